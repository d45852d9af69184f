"""nixos/tests/appliance.nix needs KVM to run (`nix flake check`). Here its nodes are evaluated
against the module and the stubs (tests/support/nix.py) and its test script is parsed: the
options it sets exist and have the right types, the nodes agree with each other (the bucket,
its keys, the model server's port), and the script is Python that only names what the
NixOS test driver provides."""

from __future__ import annotations

import ast
import builtins
import json
import re

import pytest

from ..support.nix import (REPO, _nix_in_ci, evaluate, needs_lib, nix_dir,  # noqa: F401
                           nix_eval)

TEST = REPO / "nixos" / "tests" / "appliance.nix"
NODES = ("machine", "fresh")


def _node(name: str) -> str:
    return f"(import {TEST} {{ agentsteadModule = {{ }}; }}).nodes.{name}"


@needs_lib
@pytest.mark.parametrize("name", NODES)
def test_the_agentstead_nodes_evaluate_and_agree_with_the_s3_node(evaluate, name):
    out = evaluate(_node(name))
    assert out["failedAssertions"] == []
    env = out["agentstead"]["environment"]
    assert env["AGENTSTEAD_PUBLIC_URL"] == "https://agentstead.test"
    assert env["AGENTSTEAD_INITIAL_ADMIN_EMAIL"] == "admin@example.org"
    assert (env["AGENTSTEAD_BACKUP_S3_ENDPOINT"], env["AGENTSTEAD_BACKUP_S3_BUCKET"]) == ("http://s3:9000", "agentstead")
    assert out["restore"]["requiredBy"] == ["agentstead.service"]  # restore on first boot
    assert out["drillTimer"]["timerConfig"] == {"OnCalendar": ["", "*-*-* 03:00:00"]}
    # The bucket's keys: the file the node writes is the one rclone on `s3` accepts.
    s3 = evaluate(_node("s3"))["s3"]["serviceConfig"]
    keys = re.search(r"--auth-key (\S+),(\S+) ", s3["ExecStart"]).groups()
    written = next(rule for rule in out["tmpfilesRules"] if "agentstead-s3" in rule)
    assert written.endswith(f"AWS_ACCESS_KEY_ID={keys[0]}\\nAWS_SECRET_ACCESS_KEY={keys[1]}\\n")
    assert out["litestream"]["serviceConfig"]["LoadCredential"] == [
        "backup_s3_access_key_id:/var/lib/secrets/agentstead-s3",
        "backup_s3_secret_access_key:/var/lib/secrets/agentstead-s3"]
    assert s3["ExecStartPre"].endswith("mkdir -p /var/lib/s3/agentstead")  # the bucket
    # The model server the app is given is the one the node runs.
    provider = json.loads(env["AGENTSTEAD_LLM_PROVIDERS"])[0]
    server = out["llmServer"]["serviceConfig"]["ExecStart"].split()
    assert server[1].endswith("-llm_server.py")  # tests/support/llm_server.py, copied to the store
    assert provider["base_url"] == f"http://127.0.0.1:{server[2]}/v1" and provider["models"] == ["gpt-test"]
    # Caddy: the module's site with the test's local CA after it.
    extra = out["caddyExtra"]["agentstead.test"]
    assert extra.startswith("import ") and extra.rstrip().endswith("tls internal")
    # The browser stand-in is the file tests/system/test_chat_check.py runs here.
    assert out["scripts"]["agentstead-chat-check"] == (REPO / "nixos" / "tests" / "chat_check.py").read_text()
    assert "agentstead" in out["scripts"] and "restart-under-load" in out["scripts"]


DRIVER = {"subtest", "retry", "start_all", "machines", "driver", "serial_stdout_on", "serial_stdout_off"}


@needs_lib
def test_the_test_script_is_python_that_names_only_the_nodes_and_the_driver(nix_dir):
    harness = nix_dir / "script.nix"
    harness.write_text(f"{{ libPath }}: (import {TEST} {{ agentsteadModule = {{ }}; }}).testScript\n")
    done = nix_eval(harness, nix_dir)
    assert done.returncode == 0, done.stderr
    script = json.loads(done.stdout)
    tree = ast.parse(script)
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    bound |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    bound |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) for a in n.args.args}
    bound |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.Lambda) for a in n.args.args}
    bound |= {alias.asname or alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    free = used - bound - set(dir(builtins))
    assert free == {"s3", "machine", "fresh"} | (free & DRIVER), free
    # What a user sees, each checked.
    for needle in ("application/wasm", "agentstead-chat-check", "login-link", "restart-under-load",
                   "agentstead-backup-drill.service", "restored /var/lib/agentstead/agentstead.db", "agentstead doctor"):
        assert needle in script, needle

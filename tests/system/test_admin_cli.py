"""`agentstead admin create-user` and `admin create-token` as a newcomer runs them, then the
token used against `agentstead serve` over HTTP: the way a script gets its credentials."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request

from ..support.procs import VENV_BIN, Server, clean_env

AGENTSTEAD = str(VENV_BIN / "agentstead")


def _cli(state, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([AGENTSTEAD, "admin", *args], env=clean_env(AGENTSTEAD_STATE_DIR=str(state)),
                          capture_output=True, text=True, timeout=60)


def _call(url: str, token: str, method: str = "GET", body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"Bearer {token}",
                                                                  "Content-Type": "application/json"},
                                     data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_create_token_prints_a_token_the_api_accepts_with_the_scopes_asked(tmp_path):
    state = tmp_path / "state"
    made = _cli(state, "create-user", "--email", "script@example.org")
    assert made.returncode == 0, made.stderr
    issued = _cli(state, "create-token", "--email", "script@example.org", "--name", "nightly", "--scopes", "read")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert token and "\n" not in token   # only the token: `TOKEN=$(agentstead admin create-token …)` works

    with Server(state) as server:
        status, me = _call(server.url + "/api/me", token)
        assert status == 200, me
        assert me["user"]["email"] == "script@example.org"
        assert me["auth"]["via"] == "token" and me["auth"]["scopes"] == ["read"]
        status, tokens = _call(server.url + "/api/tokens", token)
        assert status == 200 and [t["name"] for t in tokens["tokens"]] == ["nightly"]
        # read only: a write is refused
        status, refused = _call(server.url + "/api/threads", token, "POST", {"agent_id": "x"})
        assert status == 403 and refused["error"]["code"] == "insufficient_scope", refused


def test_create_token_refuses_an_unknown_user_and_unknown_scopes(tmp_path):
    state = tmp_path / "state"
    unknown = _cli(state, "create-token", "--email", "nobody@example.org")
    assert unknown.returncode == 1 and "no active user with email nobody@example.org" in unknown.stderr
    assert unknown.stdout == ""
    assert _cli(state, "create-user", "--email", "member@example.org").returncode == 0
    bad = _cli(state, "create-token", "--email", "member@example.org", "--scopes", "read,root")
    assert bad.returncode == 2 and "--scopes" in bad.stderr and bad.stdout == ""
    # a member cannot mint an admin token from the host either: the same rule as POST /api/tokens
    admin = _cli(state, "create-token", "--email", "member@example.org", "--scopes", "admin")
    assert admin.returncode == 1 and "scopes" in admin.stderr and admin.stdout == ""

"""Signing in to a real, running Agentstead from a benchmark, the way a person without an
identity provider does (tests/system/test_run_crash.py does the same):

1. `agentstead admin create-user --email … [--role admin]` and `admin login-link` against the
   server's state directory (the CLI shares the database file and the generated secret key);
2. GET /auth/link/<token> → 302 with the session cookies (`as_access`, `as_refresh`);
3. GET /api/me → the CSRF token;
4. POST /api/tokens (cookie + Origin + X-CSRF-Token) → an API token for `Authorization: Bearer`.

Imported by bench/auth/run.py, bench/ws/run.py and bench/runs/run.py.
"""

from __future__ import annotations

import dataclasses
import http.cookies
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "http://localhost:47294"   # the default AGENTSTEAD_PUBLIC_URL: what browsers send as Origin


@dataclasses.dataclass(frozen=True)
class SignedIn:
    user_id: str
    email: str
    access_cookie: str      # value of `as_access` (a short-lived JWT)
    csrf_token: str
    api_token: str          # `ast_…`, for Authorization: Bearer

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"}

    @property
    def cookie_header(self) -> dict[str, str]:
        return {"Cookie": f"as_access={self.access_cookie}"}


def agentstead_bin() -> list[str]:
    exe = Path(sys.executable).parent / "agentstead"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "agentstead"]


def _cli(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(agentstead_bin() + args, env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"agentstead {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _request(url: str, *, method: str = "GET", headers: dict | None = None, body: dict | None = None,
             follow: bool = True):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener() if follow else urllib.request.build_opener(_NoRedirect)
    try:
        return opener.open(req, timeout=10)
    except urllib.error.HTTPError as exc:
        if not follow and exc.code in (301, 302, 303, 307, 308):
            return exc
        raise RuntimeError(f"{method} {url} answered {exc.code}: {exc.read()[:500]!r}") from None


def sign_in(base_url: str, env: dict[str, str], email: str, *, role: str = "admin",
            scopes: tuple[str, ...] = ("read", "write", "admin")) -> SignedIn:
    """env: the server's environment (at least AGENTSTEAD_STATE_DIR). Creates the user."""
    _cli(["admin", "create-user", "--email", email, "--role", role], env)
    link = _cli(["admin", "login-link", "--email", email], env).split()[0]
    resp = _request(base_url + "/auth/link/" + link.rsplit("/", 1)[1], follow=False)
    if resp.status != 302 and getattr(resp, "code", None) != 302:
        raise RuntimeError(f"sign-in link answered {resp.status}")
    jar = http.cookies.SimpleCookie()
    for value in resp.headers.get_all("Set-Cookie") or []:
        jar.load(value)
    if "as_access" not in jar:
        raise RuntimeError(f"no as_access cookie after the sign-in link: {list(jar)}")
    access = jar["as_access"].value
    cookie = {"Cookie": f"as_access={access}"}
    with _request(base_url + "/api/me", headers=cookie) as r:
        me = json.loads(r.read())
    unsafe = {**cookie, "Origin": ORIGIN, "X-CSRF-Token": me["csrf_token"]}
    with _request(base_url + "/api/tokens", method="POST", headers=unsafe,
                  body={"name": "bench", "scopes": list(scopes)}) as r:
        token = json.loads(r.read())["token"]
    return SignedIn(me["user"]["id"], email, access, me["csrf_token"], token)


def check_credentials(base_url: str, headers: dict[str, str]) -> str:
    """GET /api/me with these headers; returns how the server authenticated the caller
    ("session" or "token"). Raises when it does not (expired cookie, revoked token)."""
    with _request(base_url + "/api/me", headers=headers) as r:
        return json.loads(r.read())["auth"]["via"]

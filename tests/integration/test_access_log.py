"""The app's own access log: one JSON line per request, and no secret from a URL in it."""

from __future__ import annotations

import json

from agentstead.keys import ACCESS_LOG, IDENTITY
from agentstead.services.identity import Context

from ..support.auth import make_user


def _lines(app, capsys) -> list[dict]:
    app[ACCESS_LOG].flush()  # it writes in batches; the test reads now
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()
            if line.startswith("{") and '"agentstead.access"' in line]


async def test_access_log_never_records_link_tokens_callback_codes_or_tickets(make_client, settings, capsys):
    client = await make_client(settings.replace(log_format="json"))
    await make_user(client.app, "ada@example.org")
    links = [(await client.app[IDENTITY].users.login_link("ada@example.org", Context())).rsplit("/", 1)[1]
             for _ in range(2)]
    secrets = {"code": "c0de-" + "q" * 30, "state": "st4te-" + "w" * 30, "ticket": "t1cket-" + "e" * 30,
               "query-token": "ast_" + "r" * 40}
    capsys.readouterr()
    cases = [
        ("GET", f"/auth/link/{links[0]}", 302, "/auth/link/{token}"),            # signs in
        ("GET", f"/auth/link/{links[0]}", 302, "/auth/link/{token}"),            # used: to the sign-in page
        ("POST", f"/auth/link/{links[1]}", 405, "/auth/link/{token}"),           # no route: still redacted
        ("GET", f"/auth/link/{links[1]}/", 404, "/auth/link/{token}"),
        ("GET", f"/AUTH/Link/{links[1]}", 404, "/auth/link/{token}"),
        ("GET", f"/auth/callback/none?code={secrets['code']}&state={secrets['state']}", 302, "/auth/callback/none"),
        ("GET", f"/ws?ticket={secrets['ticket']}", 401, "/ws"),
        ("GET", f"/api/me?access_token={secrets['query-token']}", 400, "/api/me"),
    ]
    for method, path, status, _ in cases:
        resp = await client.request(method, path, allow_redirects=False, validate_contract=False)
        assert resp.status == status, (method, path, resp.status)
    lines = _lines(client.app, capsys)
    assert [(e["method"], e["path"], e["status"]) for e in lines] == [(m, p, s) for m, _, s, p in cases]
    text = json.dumps(lines)
    for secret in [*links, *secrets.values()]:
        assert secret not in text
    # The second link was never used: redacting its requests did not spend it.
    assert (await client.get(f"/auth/link/{links[1]}", allow_redirects=False)).headers["Location"] == \
        f"{settings.public_url}/"


async def test_a_batch_whose_write_fails_is_kept_and_written_whole_later():
    """A real failure: the log goes to a non-blocking pipe that is full (EAGAIN), as when the
    journal stops reading for a while. Nothing is lost or repeated once it reads again."""
    import fcntl
    import os

    from agentstead.logs import AccessLog

    r, w = os.pipe()
    for fd in (r, w):
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    filler = 0
    while True:   # fill the pipe to the brim
        try:
            filler += os.write(w, b"#" * 4096)
        except BlockingIOError:
            break

    def read_all() -> bytes:
        out = b""
        while True:
            try:
                chunk = os.read(r, 1 << 16)
            except BlockingIOError:
                return out
            out += chunk

    with os.fdopen(w, "w") as stream:
        log = AccessLog("json", stream=stream)
        for i in range(300):
            log.write({"n": i, "path": "/x" * 20})
        log.flush()
        assert log._pending and log.failures == 1           # the write failed; the lines wait
        got = read_all()                                     # the reader catches up
        for _ in range(100):
            if not log._pending:
                break
            log.flush()
            got += read_all()
        assert not log._pending
    os.close(r)
    lines = got[filler:].decode().splitlines()
    assert [json.loads(line)["n"] for line in lines] == list(range(300)) and log.dropped == 0

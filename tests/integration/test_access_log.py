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
    links = [(await client.app[IDENTITY].login_link("ada@example.org", Context())).rsplit("/", 1)[1]
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

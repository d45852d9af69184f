"""HTTP basics: request ids, JSON errors for every failure, body limits."""

from __future__ import annotations

import json

from aiohttp import web

from agentstead.auth.access import public
from agentstead.http.bodies import json_body


def echo_routes(app: web.Application) -> None:
    """A test-only route that reads a JSON body through the real helper."""
    @public
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"got": await json_body(request)})

    @public
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internal detail /etc/passwd")

    app.router.add_post("/api/test/echo", echo)
    app.router.add_get("/api/test/boom", boom)


def assert_error(body: dict, code: str) -> dict:
    assert set(body) == {"error"}
    err = body["error"]
    assert err["code"] == code
    assert err["message"] and err["request_id"]
    return err


async def test_unknown_route_is_404_json(client):
    resp = await client.get("/api/nope")
    assert resp.status == 404
    err = assert_error(await resp.json(), "not_found")
    assert err["request_id"] == resp.headers["X-Request-ID"]


async def test_wrong_method_is_405_with_allow(client):
    resp = await client.post("/healthz", data=b"{}", headers={"Content-Type": "application/json"})
    assert resp.status == 405
    assert "GET" in resp.headers["Allow"]
    assert_error(await resp.json(), "method_not_allowed")


async def test_request_id_is_reused_from_a_proxy_when_safe(client):
    resp = await client.get("/healthz", headers={"X-Request-ID": "caddy-req-0123456789"})
    assert resp.headers["X-Request-ID"] == "caddy-req-0123456789"
    resp = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith junk"})
    assert resp.headers["X-Request-ID"] != "bad id\twith junk"
    assert len(resp.headers["X-Request-ID"]) == 32


async def test_json_body_round_trip(make_client, settings):
    c = await make_client(settings, echo_routes)
    resp = await c.post("/api/test/echo", json={"a": [1, 2]})
    assert resp.status == 200 and await resp.json() == {"got": {"a": [1, 2]}}


async def test_malformed_json_says_where_it_broke(make_client, settings):
    c = await make_client(settings, echo_routes)
    resp = await c.post("/api/test/echo", data=b'{\n  "a": 1,\n  "b": }',
                        headers={"Content-Type": "application/json"})
    assert resp.status == 400
    err = assert_error(await resp.json(), "malformed_json")
    assert err["details"]["line"] == 3 and err["details"]["column"] == 8
    assert "line 3 column 8" in err["message"]


async def test_empty_and_non_utf8_bodies_are_400(make_client, settings):
    c = await make_client(settings, echo_routes)
    for data in (b"", b'"\xff\xfe"'):
        resp = await c.post("/api/test/echo", data=data, headers={"Content-Type": "application/json"})
        assert resp.status == 400
        assert_error(await resp.json(), "malformed_json")


async def test_wrong_content_type_is_415(make_client, settings):
    c = await make_client(settings, echo_routes)
    resp = await c.post("/api/test/echo", data=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 415
    assert "application/json" in assert_error(await resp.json(), "unsupported_media_type")["message"]


async def test_oversized_body_is_413_declared_or_chunked(make_client, settings):
    c = await make_client(settings.replace(max_body_size=1024), echo_routes)
    big = json.dumps({"x": "y" * 2000}).encode()
    resp = await c.post("/api/test/echo", data=big, headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert "limit is 1024" in assert_error(await resp.json(), "payload_too_large")["message"]

    async def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(4):
            yield b" " * 600
    resp = await c.post("/api/test/echo", data=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert_error(await resp.json(), "payload_too_large")
    # just under the limit is fine
    resp = await c.post("/api/test/echo", data=b'"' + b"z" * 1000 + b'"',
                        headers={"Content-Type": "application/json"})
    assert resp.status == 200


async def test_unhandled_error_is_500_without_internals(make_client, settings, caplog):
    c = await make_client(settings, echo_routes)
    resp = await c.get("/api/test/boom")
    assert resp.status == 500
    text = await resp.text()
    assert "secret internal detail" not in text and "Traceback" not in text
    err = assert_error(json.loads(text), "internal_error")
    # the log has the stack trace and the same request id
    logged = [r for r in caplog.records if r.name == "agentstead.http"]
    assert logged and logged[0].exc_info and "secret internal detail" in str(logged[0].exc_info[1])
    assert logged[0].request_id == err["request_id"]


async def test_every_request_is_access_logged_with_its_id(client):
    import io

    from agentstead.keys import ACCESS_LOG
    log = client.app[ACCESS_LOG]
    log.fmt, log.stream = "json", io.StringIO()
    resp = await client.get("/healthz")
    await client.get("/auth/link/secret-token-value", allow_redirects=False)
    log.flush()
    lines = [json.loads(line) for line in log.stream.getvalue().splitlines()]
    assert lines[0]["request_id"] == resp.headers["X-Request-ID"]
    assert (lines[0]["method"], lines[0]["route"], lines[0]["status"]) == ("GET", "/healthz", 200)
    assert "secret-token-value" not in log.stream.getvalue()  # secrets in paths never reach the log
    assert lines[1]["path"] == "/auth/link/{token}"

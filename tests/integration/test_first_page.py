"""GET /page/{path} (http/first_page.py): index.html with the page's first view drawn by the SPA's
own code (frontend/src under CPython) over the app's own answers for the caller, through the real
app and SQLite file. Data is escaped wherever it lands (text, attributes, the embedded answers);
what cannot be drawn here (signed out, a chat thread's page, which reads the browser's storage)
gets index.html as it is; the route refuses what every route refuses."""

from __future__ import annotations

import dataclasses
import html
import json
import re

import pytest

from agentstead.auth import tokens
from agentstead.keys import IDENTITY
from agentstead.app import create_app
from agentstead.settings import ConfigError

from ..support.auth import browser_session
from ..support.spa import spa_for_first_pages
from .test_sessions import put_cookie

HOSTILE = '</script><img src=x onerror=alert(1)><!-- "&amp;'
EARLY = re.compile(r'<script type="application/json" id="agentstead-early">(.*?)</script>', re.S)


@pytest.fixture
async def site(make_client, settings, tmp_path):
    spa = spa_for_first_pages(tmp_path / "spa")
    client = await make_client(dataclasses.replace(settings, frontend_dir=str(spa)))
    return client, spa


async def _page(client, path: str, **kw):
    resp = await client.get("/page" + path, **kw)
    return resp, await resp.text()


def _early(body: str) -> dict:
    found = EARLY.findall(body)
    assert len(found) == 1, body[-2000:]
    return json.loads(found[0])


async def test_a_signed_in_page_is_drawn_with_the_answers_it_was_drawn_from(site):
    client, spa = site
    headers = await browser_session(client, "ada@example.org")
    resp = await client.post("/api/agents", json={"name": HOSTILE, "instructions": "be brief"}, headers=headers)
    assert resp.status == 201, await resp.text()

    resp, body = await _page(client, "/agents")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    assert resp.headers["Cache-Control"] == "no-store"
    index = (spa / "index.html").read_text()
    assert body.startswith(index[:index.index("<!--first-page-->")])
    assert body.endswith(index[index.index("<!--/first-page-->") + len("<!--/first-page-->"):])
    assert "Loading Agentstead" not in body
    assert '<div id="app-root" inert>' in body and 'data-page="agents"' in body
    assert "ada@example.org" in body and '<li class="agent">' in body
    # the name is text wherever it is shown, and never ends the answers' <script> early
    assert "<img src=x" not in body and body.count("</script>") == index.count("</script>") + 1
    assert html.escape(HOSTILE, quote=False) in body
    assert 'aria-label="Edit ' + html.escape(HOSTILE, quote=True).replace("&#x27;", "'") + '"' in body

    early = _early(body)
    assert sorted(early) == ["/api/agents?limit=200", "/api/me", "/api/models"]
    listed = await (await client.get("/api/agents?limit=200")).json()
    status, agents = early["/api/agents?limit=200"]
    assert status == 200 and json.loads(agents) == listed
    assert json.loads(early["/api/me"][1])["user"]["email"] == "ada@example.org"


async def test_the_root_is_drawn_as_the_page_it_leads_to(site):
    client, _ = site
    await browser_session(client, "ada@example.org")
    _, body = await _page(client, "/")
    assert 'data-page="agents"' in body
    assert sorted(_early(body)) == ["/api/agents?limit=200", "/api/me", "/api/models"]


async def test_another_persons_data_is_not_drawn(site):
    client, _ = site
    headers = await browser_session(client, "ada@example.org")
    await client.post("/api/agents", json={"name": "ada's own"}, headers=headers)
    client.raw.session.cookie_jar.clear()
    await browser_session(client, "bob@example.org")
    _, body = await _page(client, "/agents")
    assert "bob@example.org" in body and "ada" not in body


@pytest.mark.parametrize("path", ["/agents", "/chat", "/runs", "/workflows"])
async def test_signed_out_is_drawn_the_signin_page_the_spa_sends_them_to(site, path):
    client, _ = site
    resp, body = await _page(client, path)
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    assert 'data-page="signin"' in body and "Sign in to Agentstead" in body
    early = _early(body)
    assert early["/api/me"][0] == 401 and early["/auth/providers"][0] == 200


async def test_an_expired_session_is_left_to_the_browser_to_refresh(site):
    client, spa = site
    await browser_session(client, "ada@example.org")
    service = client.app[IDENTITY]
    me = await (await client.get("/api/me")).json()
    expired = tokens.issue_access(service.sessions.keys, service.sessions.issuer, me["user"]["id"],
                                  me["auth"]["session_id"], ttl=30, now=0)
    put_cookie(client, "as_access", expired)
    _, body = await _page(client, "/agents")
    assert body == (spa / "index.html").read_text()


async def test_the_signin_page_is_drawn_for_anyone(site):
    client, _ = site
    _, body = await _page(client, "/signin?error=link_invalid")
    assert 'data-page="signin"' in body and "Sign in to Agentstead" in body and "role=\"alert\"" in body
    assert sorted(_early(body)) == ["/api/me", "/auth/providers"]


@pytest.mark.parametrize("path, shown", [
    ("/runs", 'data-page="runs"'), ("/chat", 'data-page="chat"'), ("/workflows", 'data-page="workflows"'),
    ("/account", 'data-page="account"'), ("/nowhere/%3Cb%3E", "Nothing lives at <code>/nowhere/%3Cb%3E</code>"),
])
async def test_other_pages_are_drawn(site, path, shown):
    client, _ = site
    await browser_session(client, "ada@example.org")
    resp, body = await _page(client, path)
    assert resp.status == 200 and '<div id="app-root" inert>' in body and shown in body, (path, body[-1500:])


async def test_a_chat_threads_page_is_left_to_the_browser(site):
    """The thread's page asks the browser's storage where its stream was read to (Recall)."""
    client, spa = site
    headers = await browser_session(client, "ada@example.org")
    agent = await (await client.post("/api/agents", json={"name": "helper"}, headers=headers)).json()
    thread = await (await client.post("/api/threads", json={"agent_id": agent["id"]}, headers=headers)).json()
    _, body = await _page(client, f"/chat/{thread['id']}")
    assert body == (spa / "index.html").read_text()


async def test_pages_are_counted_and_their_answers_logged_as_requests(site):
    client, _ = site
    await browser_session(client, "ada@example.org")
    await _page(client, "/agents")
    await _page(client, "/chat/nothing-here")
    metrics = await (await client.get("/metrics")).text()
    assert 'agentstead_first_page_duration_seconds_count{outcome="drawn"} 1.0' in metrics
    assert 'agentstead_first_page_duration_seconds_count{outcome="left"} 1.0' in metrics
    assert 'agentstead_http_requests_total{method="GET",route="/api/models",status="200"} 1.0' in metrics


async def test_credentials_in_the_url_are_refused_as_everywhere(site):
    client, _ = site
    resp = await client.get("/page/agents?access_token=abc")
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "token_in_url"


async def test_without_a_frontend_dir_the_route_answers_404(client):
    resp = await client.get("/page/agents")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


def test_a_frontend_dir_must_be_a_built_spa(settings, tmp_path):
    """`agentstead serve` says so and exits (cli.main: a configuration error), before listening."""
    with pytest.raises(ConfigError, match="AGENTSTEAD_FRONTEND_DIR.*has no index.html"):
        create_app(dataclasses.replace(settings, frontend_dir=str(tmp_path)))
    spa = spa_for_first_pages(tmp_path / "spa")
    (spa / "ssr" / "app.py").unlink()
    with pytest.raises(ConfigError, match="has no ssr/app.py"):
        create_app(dataclasses.replace(settings, frontend_dir=str(spa)))
    spa = spa_for_first_pages(tmp_path / "other")
    (spa / "index.html").write_text("<!doctype html><div id=app></div>")
    with pytest.raises(ConfigError, match="no <!--first-page-->"):
        create_app(dataclasses.replace(settings, frontend_dir=str(spa)))

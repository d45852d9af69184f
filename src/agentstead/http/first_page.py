"""GET /page/{path}: index.html for a page load, with the page's first view drawn in
(first_page/: the SPA's own code over the app's own answers). Caddy sends page loads here
(caddy/site.caddy) and serves index.html as it is when the app answers 404 (no
AGENTSTEAD_FRONTEND_DIR) or cannot be reached.

The answers are the app's own, for the same person: each GET the page's init asks for goes
through the whole middleware chain (credentials, rate limit, access log, metrics) as the browser's
request would. aiohttp has no public sub-request API; Application._handle is what its server calls
for each request (the version is locked; tests/integration/test_first_page.py goes through it)."""

from __future__ import annotations

import asyncio
import json
import logging
import pathlib
import time
import types

from aiohttp import web

from ..auth.access import public
from ..errors import Refused
from ..first_page import render, spa
from ..keys import FIRST_PAGE, METRICS
from ..settings import ConfigError

log = logging.getLogger("agentstead.first_page")

PREFIX = "/page"
SLOT = ("<!--first-page-->", "<!--/first-page-->")
# A page waits at most this long for its first view; then it gets index.html as it is and the
# SPA asks for the answers itself.
DEADLINE = 1.0
# Answers embedded in a <script type="application/json">: nothing in them may end the element.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                              "\u2029": "\\u2029"})


class FirstPage:
    """The built SPA of AGENTSTEAD_FRONTEND_DIR: its modules, loaded once, and its index.html
    (read again when the file changes: a rebuilt SPA names other assets)."""

    def __init__(self, directory: str):
        self.dir = pathlib.Path(directory)
        for needed in ("index.html", "ssr/app.py"):
            if not (self.dir / needed).is_file():
                raise ConfigError("AGENTSTEAD_FRONTEND_DIR", f"{directory} has no {needed}: not a built SPA "
                                  "(scripts/build-frontend makes one)")
        self.spa: types.SimpleNamespace = spa.load(self.dir / "ssr")
        self._index: tuple[float, str, int, int] | None = None   # mtime, text, where the slot starts and ends
        try:
            self._read()
        except ValueError as exc:
            raise ConfigError("AGENTSTEAD_FRONTEND_DIR", str(exc)) from None

    def _read(self) -> tuple[float, str, int, int]:
        path = self.dir / "index.html"
        mtime = path.stat().st_mtime
        if self._index is None or self._index[0] != mtime:
            text = path.read_text(encoding="utf-8")
            start, end = text.find(SLOT[0]), text.find(SLOT[1])
            if start < 0 or end < start:
                raise ValueError(f"{path} has no {SLOT[0]}...{SLOT[1]} slot")
            self._index = (mtime, text, start, end + len(SLOT[1]))
        return self._index

    def index(self, view: str | None = None) -> str:
        """index.html with `view` in its first-page slot, or as it is (its loading note there)."""
        _, text, start, end = self._read()
        return text if view is None else text[:start] + view + text[end:]


def drawn(view: str, answers: dict[str, tuple[int, str]]) -> str:
    """The first-page slot's content: the view, then the answers it was drawn from, as JSON."""
    data = json.dumps({url: [status, body] for url, (status, body) in answers.items()}).translate(_SCRIPT_SAFE)
    return view + '<script type="application/json" id="agentstead-early">' + data + "</script>"


@public
async def page(request: web.Request) -> web.Response:
    first: FirstPage | None = request.app.get(FIRST_PAGE)
    if first is None:
        raise Refused(404, "not_found", "this app does not draw pages (AGENTSTEAD_FRONTEND_DIR is unset)")
    url = request.rel_url.raw_path[len(PREFIX):] or "/"
    if request.rel_url.raw_query_string:
        url += "?" + request.rel_url.raw_query_string
    started = time.perf_counter()
    outcome = "drawn"
    try:
        async with asyncio.timeout(DEADLINE):
            view, answers = await render.first_view(first.spa, url, lambda u: _answer(request, u))
        body = first.index(drawn(view, answers))
    except render.NotHere as exc:
        outcome = "left"
        log.debug("first view of %s left to the SPA: %s", request.rel_url.raw_path, exc)
        body = first.index()
    except Exception as exc:   # TimeoutError, Unwritable, a view's bug: the SPA draws the page
        outcome = "failed"
        log.warning("first view of %s not drawn: %r", request.rel_url.raw_path, exc)
        body = first.index()
    request.app[METRICS].first_pages.labels(outcome).observe(time.perf_counter() - started)
    # the person's own data (and their CSRF token): never stored by a browser or a proxy
    return web.Response(text=body, content_type="text/html", headers={"Cache-Control": "no-store"})


async def _answer(request: web.Request, url: str) -> tuple[int, str]:
    """The app's answer to `GET url` from the page's caller (its cookie), through every middleware."""
    headers = request.headers.copy()     # a mutable copy (CIMultiDict)
    headers["Accept"] = "application/json"
    sub = request.clone(method="GET", rel_url=url, headers=headers)
    response = await request.app._handle(sub)
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        raise render.NotHere(f"GET {url} is not answered with a body (a stream): the browser asks it")
    return response.status, response.body.decode("utf-8", "replace")

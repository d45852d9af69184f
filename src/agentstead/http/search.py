"""GET /api/search: the caller's threads and messages matching a query."""

from __future__ import annotations

from aiohttp import web

from ..auth.access import requires
from ..keys import SEARCH
from ..services.search import segments
from . import validate as v
from .authn import principal_of


@requires("read")
async def search(request: web.Request) -> web.Response:
    text = request.query.get("q", "")
    limit = v.query_int(request.query.get("limit"), "limit", default=20, lo=1, hi=50)
    found = await request.app[SEARCH].search(principal_of(request), text, limit=limit)
    return web.json_response({
        "threads": [{"id": t.id, "title": t.title, "updated_at": t.updated_at, "highlight": segments(t.highlighted)}
                    for t in found.threads],
        "messages": [{"id": m.id, "seq": m.seq, "thread_id": m.thread_id, "thread_title": m.thread_title,
                      "role": m.role, "created_at": m.created_at, "snippet": segments(m.snippet)}
                     for m in found.messages]})

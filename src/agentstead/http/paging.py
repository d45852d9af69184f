"""Lists a page at a time: `?limit=` and the `next` cursor, the same rule for every list."""

from __future__ import annotations

from typing import Any, Callable

from aiohttp import web

from . import validate as v


def limit(request: web.Request, *, default: int = 50, hi: int = 200) -> int:
    """The `limit` query parameter, 1 to `hi`."""
    return v.query_int(request.query.get("limit"), "limit", default=default, lo=1, hi=hi)


def page(name: str, rows: list, size: int, shape: Callable[[Any], dict], cursor: Callable[[Any], Any],
         **extra: Any) -> web.Response:
    """`{name: [shaped rows], "next": the last row's cursor when the page is full, else null}`."""
    return web.json_response({**extra, name: [shape(r) for r in rows],
                              "next": cursor(rows[-1]) if len(rows) == size else None})

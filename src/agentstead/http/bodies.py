"""Reading request bodies: size limit, content type, JSON with where it broke, and
nothing the store cannot hold (http/storable.py)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..keys import SETTINGS
from . import storable
from ..errors import Refused
from .validate import fail

_UTF8 = ("", "utf-8", "utf8")   # RFC 8259 8.1: JSON between systems is UTF-8


async def json_body(request: web.Request) -> Any:
    """The request's JSON document, or a Refused (415, 413, 400, 422) saying what is wrong."""
    if request.content_type != "application/json":
        raise Refused(415, "unsupported_media_type",
                       f"send the body as application/json (got {request.content_type or 'nothing'})")
    if (request.charset or "").lower() not in _UTF8:
        raise Refused(415, "unsupported_media_type", "send the JSON body as UTF-8 (charset=utf-8 or none)")
    try:
        raw = await request.read()  # aiohttp enforces client_max_size while reading
    except web.HTTPRequestEntityTooLarge:
        raise Refused(413, "payload_too_large",
                       f"request body is larger than {request.app[SETTINGS].max_body_size} bytes") from None
    if not raw:
        raise Refused(400, "malformed_json", "request body is empty; send a JSON document")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "malformed_json", "request body is not valid UTF-8") from None
    try:
        return storable.loads(text)
    except json.JSONDecodeError as exc:
        raise Refused(400, "malformed_json",
                       f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                       details={"line": exc.lineno, "column": exc.colno, "position": exc.pos}) from None
    except storable.Unstorable as exc:
        raise fail(exc.pointer, exc.message) from None

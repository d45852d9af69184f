"""Errors are data: every API error is {"error": {"code", "message", "request_id"}}.

The one error type is errors.Refused (raised by services and handlers); this module
shapes it, and aiohttp's own HTTP errors, into that JSON."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..errors import Refused
from ..logs import request_id

# Status -> code for errors that aiohttp raises itself (routing, body size).
_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_failed", 429: "rate_limited",
    500: "internal_error", 503: "unavailable",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id.get()}
    if details:
        body["details"] = details
    return {"error": body}


def error_response(status: int, code: str, message: str, *, details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=json.dumps(error_body(code, message, details)),
                        content_type="application/json", headers=headers)


def from_refused(exc: Refused) -> web.Response:
    return error_response(exc.status, exc.code, exc.message, details=exc.details, headers=exc.headers)


def from_http_exception(exc: web.HTTPException) -> web.Response:
    status = exc.status
    code = _CODES.get(status, "error")
    if status == 404:
        message = "no such route"
    elif status == 405:
        allowed = sorted(getattr(exc, "allowed_methods", ()) or ())
        message = f"method not allowed; use {', '.join(allowed)}" if allowed else "method not allowed"
    elif status == 413:
        message = "request body too large"
    else:
        message = exc.reason
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after", "location")}
    return error_response(status, code, message, headers=headers)

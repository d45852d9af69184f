"""Errors of the protocol adapters in their clients' shapes, made from the app's one
error (http/errors.py) as it leaves: under /v1 the OpenAI SDKs read `error.type` and
`error.param` (added beside code, message and request_id)."""

from __future__ import annotations

import json

from aiohttp import web

# OpenAI's error types by status (openai-python: _exceptions.py maps statuses to classes).
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "invalid_request_error", 409: "conflict_error", 413: "invalid_request_error",
          415: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error"}


def openai_shape(body: dict, status: int) -> dict:
    error = dict(body["error"])
    details = error.get("details") or {}
    param = details.get("param")
    if param is None and details.get("errors"):
        param = details["errors"][0]["pointer"].lstrip("/").replace("/", ".") or None
    kind = "insufficient_quota" if error.get("code") == "budget_exceeded" else _TYPES.get(status, "api_error")
    error.update(type=kind, param=param)
    return {"error": error}


@web.middleware
async def compat_errors(request: web.Request, handler):
    """Just inside `observe`: every error answer of /v1, whoever made it, in OpenAI's shape."""
    response = await handler(request)
    if (request.path.startswith("/v1/") and response.status >= 400 and isinstance(response, web.Response)
            and response.content_type == "application/json" and response.body is not None):
        try:
            body = json.loads(response.body)
        except ValueError:
            return response
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            response.text = json.dumps(openai_shape(body, response.status))
    return response

"""A server span per request, after the HTTP semantic conventions: named by the route's
pattern (`GET /api/runs/{id}`: low cardinality, never the path with its ids), with the
status the client got and the request id of the access log line.

Placed right inside `observe` (middleware.py), so the span sees the request id and the
status after `json_errors` made every failure a JSON answer. The SDK's aiohttp-server
instrumentation is not used: its middleware works only after its instrumentor has
replaced `aiohttp.web.Application` process-wide with a subclass, and it keeps its tracer
and settings in module globals (one provider per process, not per app); its span name is
the same `{method} {resource.canonical}` as here. /metrics, /healthz and /readyz are not
traced: scrapes and probes every few seconds would bury the requests people make.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode

from ..logs import request_id
from .middleware import CLIENT_CLOSED, _loggable_path, _route_label

UNTRACED = frozenset({"/metrics", "/healthz", "/readyz"})


def server_spans(tracer: trace.Tracer):
    """The middleware, for the app's tracer."""

    @web.middleware
    async def traced(request: web.Request, handler):
        route = _route_label(request)
        if route in UNTRACED:
            return await handler(request)
        known = route != "unmatched"
        attributes = {"http.request.method": request.method, "url.scheme": request.scheme,
                      "url.path": _loggable_path(request), "agentstead.request_id": request_id.get(""),
                      "user_agent.original": request.headers.get("User-Agent", "")}
        if known:
            attributes["http.route"] = route
        if request.remote:
            attributes["client.address"] = request.remote
        # A caller's W3C traceparent continues its trace (a client library, another service).
        parent = propagate.extract(request.headers)
        with tracer.start_as_current_span(f"{request.method} {route}" if known else request.method, context=parent,
                                          kind=SpanKind.SERVER, attributes=attributes, record_exception=False,
                                          set_status_on_exception=False) as span:
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except asyncio.CancelledError:
                status = CLIENT_CLOSED
                raise
            except web.HTTPException as exc:   # redirects raised as exceptions (json_errors maps the rest)
                status = exc.status
                raise
            finally:
                span.set_attribute("http.response.status_code", status)
                if status >= 500 and status != CLIENT_CLOSED:
                    span.set_attribute("error.type", str(status))
                    span.set_status(StatusCode.ERROR)

    return traced

"""Middlewares: request id, access log and metrics, errors as JSON, client aborts,
unreadable headers, body limit."""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
import sqlite3
import time
import uuid

from aiohttp import web

from ..errors import Refused
from ..keys import ACCESS_LOG, METRICS, SETTINGS
from ..logs import request_id
from ..store.write_health import is_write_failure
from . import errors, storable


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")

log = logging.getLogger("agentstead.http")

# A proxy's request id is reused when it looks like one (Caddy sends none by default).
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

# nginx's "client closed request": the client left before the answer (an aborted upload, a
# closed tab). Recorded as such in the access log and /metrics, never as a 5xx.
CLIENT_CLOSED = 499


def _route_label(request: web.Request) -> str:
    info = request.match_info
    if info.http_exception is not None or info.route.resource is None:
        return "unmatched"
    return info.route.resource.canonical


_SECRET_PREFIXES = ("auth/link/",)  # single-use sign-in links: /auth/link/<token>


def _loggable_path(request: web.Request) -> str:
    """The path as logged: secrets in paths never reach the logs, whether the route matched
    or not (405, a trailing slash, other case). Query strings are never logged at all (OIDC
    callback code/state, WebSocket tickets)."""
    if "token" in request.match_info:
        return _route_label(request)
    path = request.path
    bare = path.lstrip("/").lower()
    for prefix in _SECRET_PREFIXES:
        if bare.startswith(prefix):
            return "/" + prefix + "{token}"
    return path


@web.middleware
async def observe(request: web.Request, handler):
    """Outermost: request id, timing, metrics and one JSON access-log line."""
    incoming = request.headers.get("X-Request-ID", "")
    rid = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
    token = request_id.set(rid)
    metrics = request.app[METRICS]
    metrics.in_flight.inc()
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-ID"] = rid
        return response
    except asyncio.CancelledError:
        status = CLIENT_CLOSED   # the connection ended (or the server stops) before an answer
        raise
    finally:
        elapsed = time.perf_counter() - start
        metrics.in_flight.dec()
        route = _route_label(request)
        metrics.requests.labels(request.method, route, str(status)).inc()
        metrics.latency.labels(request.method, route).observe(elapsed)
        request.app[ACCESS_LOG].write({
            "time": _now(), "level": "info", "logger": "agentstead.access", "msg": "request",
            "request_id": rid, "method": request.method, "path": _loggable_path(request), "route": route,
            "status": status, "duration_ms": round(elapsed * 1000, 3), "remote": request.remote,
            "user_agent": request.headers.get("User-Agent", ""),
        })
        request_id.reset(token)


@web.middleware
async def json_errors(request: web.Request, handler):
    """Turn every failure into the JSON error shape; never leak a stack trace."""
    try:
        return await handler(request)
    except Refused as exc:   # the one domain error, mapped here once
        return errors.from_refused(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and 2xx raised as exceptions pass through
        return errors.from_http_exception(exc)
    except ConnectionResetError:
        transport = request.transport
        if transport is not None and not transport.is_closing():
            return _internal_error(request)  # not our client: an outbound connection was reset
        log.info("client closed the connection before the response: %s %s", request.method,
                 _loggable_path(request))
        return web.Response(status=CLIENT_CLOSED)  # cannot reach the client; it is what we log
    except Exception as exc:
        return _internal_error(request, exc)


def _internal_error(request: web.Request, exc: BaseException | None = None) -> web.Response:
    if isinstance(exc, sqlite3.Error) and is_write_failure(exc):
        # The database failed (I/O, full disk, locked): a clean, retryable answer. A write
        # may have reached the disk all the same (an fsync that failed after the WAL write),
        # so the client is told to retry with the same Idempotency-Key, never to assume.
        log.warning("database unavailable in %s %s: %s", request.method, _loggable_path(request), exc)
        return errors.error_response(
            503, "database_unavailable", "the database could not complete this request; it may or may "
            "not have taken effect: retry it (a POST with the same Idempotency-Key)",
            headers={"Retry-After": "1"})
    log.exception("unhandled error in %s %s", request.method, _loggable_path(request))
    return errors.error_response(500, "internal_error", "internal error; quote the request id when reporting it")


@web.middleware
async def readable_headers(request: web.Request, handler):
    """Header bytes that are not UTF-8 are refused before anything digests, compares or
    stores them (http/storable.py)."""
    name = storable.bad_header(request.headers)
    if name is not None:
        raise Refused(400, "bad_header", f"the {name} header is not valid UTF-8")
    return await handler(request)


@web.middleware
async def body_limit(request: web.Request, handler):
    """Refuse a declared oversized body before reading a byte of it."""
    limit = request.app[SETTINGS].max_body_size
    if request.content_length is not None and request.content_length > limit:
        raise Refused(413, "payload_too_large",
                              f"request body is {request.content_length} bytes; the limit is {limit}")
    return await handler(request)


def middlewares(traced=None) -> tuple:
    """The chain, outermost first; `traced` (http/tracing.py, with tracing on) right inside `observe`."""
    from .authn import authenticate  # imported late: it needs the identity service's keys
    from .compat_errors import compat_errors

    return (observe, *((traced,) if traced is not None else ()), compat_errors, json_errors, readable_headers,
            body_limit, authenticate)

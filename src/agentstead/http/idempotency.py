"""Idempotency-Key on creating POSTs (draft-ietf-httpapi-idempotency-key-header).

A client sends `Idempotency-Key: <unique per action>` with a POST that creates
something and sends the same key again when it retries (after a 503, a timeout,
a dropped connection). The first request's change and the key, with the response
that announced the change, commit in ONE transaction (the service calls the
`record` it is handed inside its own transaction), so:

- a retry after the change committed gets the first response again (status,
  body, Location; `Idempotent-Replayed: true`) and nothing is created twice,
  also when the first answer was a 503 or never arrived, and across restarts;
- a retry after the change did not commit finds no key and makes it now;
- the same key with a different request (method, path or JSON body) is refused
  with 422 `idempotency_key_reused`; while the first is still being handled,
  another request with its key gets 409 `idempotency_key_in_use`;
- two requests racing past those checks (two processes) meet at the key's
  primary key: the second's transaction rolls back and it answers with the first.

Keys are scoped by user, kept for AGENTSTEAD_IDEMPOTENCY_KEY_TTL, and stored
responses are encrypted with a key derived from the secret key (a new API
token's value is in its response). Failures (4xx, 5xx) are never stored: they
changed nothing, and a retry runs again.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import hashlib
import json
import logging
from typing import Any, Awaitable, Callable

from aiohttp import web
from cryptography.fernet import Fernet

from ..errors import Refused
from ..keys import IDEMPOTENCY, IDEMPOTENCY_IN_FLIGHT, SETTINGS
from ..services.idempotency import KeyTaken
from .authn import principal_of

log = logging.getLogger("agentstead.http")
HEADER = "Idempotency-Key"
MAX_KEY = 255
_CLAIM = web.RequestKey("idempotency_claim", object)


@dataclasses.dataclass(frozen=True)
class Reply:
    """A creating POST's response, as sent and as stored for retries."""
    status: int
    body: dict
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    def response(self, *, replayed: bool = False) -> web.Response:
        headers = dict(self.headers, **({"Idempotent-Replayed": "true"} if replayed else {}))
        return web.json_response(self.body, status=self.status, headers=headers)


@dataclasses.dataclass(frozen=True)
class _Claim:
    scope: str
    key: str
    fingerprint: str
    fernet: Fernet


def _fernet(app: web.Application) -> Fernet:
    secret = app[SETTINGS].secret_key.encode()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"agentstead idempotency-key responses\0" + secret).digest()))


def _fingerprint(request: web.Request, raw: bytes) -> str:
    """The request a key came with: method, path and body (JSON compared by value, so
    whitespace and key order do not matter)."""
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode() if raw else b""
    except ValueError:
        body = raw
    return hashlib.sha256(b"\0".join((request.method.encode(), request.path.encode(), body))).hexdigest()


def _key_of(request: web.Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY or not all(32 < ord(c) < 127 for c in key):
        raise Refused(400, "invalid_idempotency_key",
                       f"{HEADER} must be 1 to {MAX_KEY} printable ASCII characters without spaces "
                       "(a UUID is a good choice)")
    return key


async def _replay(request: web.Request, claim: _Claim) -> web.Response | None:
    stored = await request.app[IDEMPOTENCY].find(claim.scope, claim.key)
    if stored is None:
        return None
    if stored.fingerprint != claim.fingerprint:
        raise Refused(422, "idempotency_key_reused",
                       f"this {HEADER} was used for another request; use a new key for a new action")
    saved = json.loads(claim.fernet.decrypt(stored.response))
    return Reply(stored.status, saved["body"], saved["headers"]).response(replayed=True)


def idempotent(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    """A creating POST that honours Idempotency-Key (the handler passes `recorder(request,
    render)` to its service and answers with `render(result).response()`)."""
    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        key = _key_of(request)
        if key is None:
            return await handler(request)
        app = request.app
        claim = _Claim(principal_of(request).user_id, key, _fingerprint(request, await request.read()),
                       _fernet(app))
        replayed = await _replay(request, claim)
        if replayed is not None:
            return replayed
        in_flight = app[IDEMPOTENCY_IN_FLIGHT]
        if (claim.scope, key) in in_flight:
            raise Refused(409, "idempotency_key_in_use",
                           f"a request with this {HEADER} is still being handled; retry in a moment")
        in_flight.add((claim.scope, key))
        request[_CLAIM] = claim
        try:
            return await handler(request)
        except KeyTaken:   # another process stored it first; this one's change rolled back
            replayed = await _replay(request, claim)
            if replayed is None:
                raise Refused(409, "idempotency_key_in_use", f"retry with this {HEADER} in a moment") from None
            return replayed
        finally:
            in_flight.discard((claim.scope, key))
    return wrapper


def recorder(request: web.Request, render: Callable[[Any], Reply]) -> Callable | None:
    """What a service calls inside the transaction of its change, with its result: stores
    the key with the response `render` makes of it. None when the request has no key."""
    claim = request.get(_CLAIM)
    if claim is None:
        return None

    def seal(result: Any) -> tuple[int, bytes]:
        reply = render(result)
        return reply.status, claim.fernet.encrypt(json.dumps({"body": reply.body, "headers": reply.headers}).encode())
    return request.app[IDEMPOTENCY].recorder(claim.scope, claim.key, claim.fingerprint, seal)


async def forget_expired(app: web.Application, interval: float = 600.0) -> None:
    """In the background: keys past their time are deleted (in bounded batches)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await app[IDEMPOTENCY].forget_expired()
        except Exception:   # the database may be down: the next pass tries again
            log.exception("forgetting expired idempotency keys failed")

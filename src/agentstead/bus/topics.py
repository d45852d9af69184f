"""Topics: `runs/{id}`, `threads/{id}`, `users/{id}`, `system`, and patterns like `runs/*`.

Who may read a topic is decided by the same rules the REST routes use: each
kind of topic registers its check here (runs and threads register theirs
with the services that own those resources).
"""

from __future__ import annotations

import re
from typing import Awaitable, Callable

from ..auth.access import Principal

_TOPIC = re.compile(r"^(system|[a-z]+/[A-Za-z0-9_-]{1,64})$")
_PATTERN = re.compile(r"^[a-z]+/\*$")

Check = Callable[[Principal, str], Awaitable[bool]]


class TopicError(Exception):
    """A bad or forbidden topic; `code` is the wire error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def parse(topic: object) -> tuple[str, str | None, bool]:
    """(kind, id or None, is_pattern). Raises TopicError for anything malformed."""
    if not isinstance(topic, str) or len(topic) > 100:
        raise TopicError("invalid_topic", "topic must be a string like runs/<id>, users/<id>, system or runs/*")
    if _PATTERN.match(topic):
        return topic[:-2], None, True
    if not _TOPIC.match(topic):
        raise TopicError("invalid_topic", f"malformed topic {topic!r}")
    if topic == "system":
        return "system", None, False
    kind, ident = topic.split("/", 1)
    return kind, ident, False


class Authorizer:
    """Per-kind read checks; unknown kinds are refused."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}
        self._pattern_ok: dict[str, Callable[[Principal], bool]] = {}
        self.register("users", _own_user, pattern=lambda p: p.is_admin)
        self.register("system", _admin_only)

    def register(self, kind: str, check: Check, *, pattern: Callable[[Principal], bool] | None = None) -> None:
        """`pattern` decides who may subscribe to `kind/*` (default: administrators)."""
        self._checks[kind] = check
        self._pattern_ok[kind] = pattern or (lambda p: p.is_admin)

    async def check(self, principal: Principal, topic: str) -> None:
        kind, ident, is_pattern = parse(topic)
        if kind not in self._checks:
            raise TopicError("invalid_topic", f"unknown topic kind {kind!r}")
        if is_pattern:
            allowed = self._pattern_ok[kind](principal)
        else:
            allowed = await self._checks[kind](principal, ident or "")
        if not allowed:
            # Same answer for "not yours" and "does not exist": no probing for ids.
            raise TopicError("forbidden", f"you may not read {topic}")


async def _own_user(principal: Principal, user_id: str) -> bool:
    return principal.user_id == user_id or principal.is_admin


async def _admin_only(principal: Principal, _: str) -> bool:
    return principal.is_admin


OWNER_ONLY = ("thread.",)   # a thread's title and life: its owner's, also on users/{id}


def hidden_from(principal: Principal, topic: str) -> tuple[str, ...]:
    """Event type prefixes a reader of `topic` does not get: an administrator reading another
    user's users/{id} (or users/*) sees that user's account and run statuses, not their
    threads (which the thread routes and threads/{id} keep to the owner)."""
    kind, ident, is_pattern = parse(topic)
    if kind == "users" and (is_pattern or ident != principal.user_id):
        return OWNER_ONLY
    return ()


def matches(pattern_kind: str, topic: str) -> bool:
    return topic.startswith(pattern_kind + "/")

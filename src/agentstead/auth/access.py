"""Who may do what: the one place authorization rules live.

Every route declares its access with a decorator; the auth middleware enforces
it before the handler runs, and a test fails when a route declares nothing.
Scopes nest: admin implies write implies read. A session has the scopes of
its user's role; an API token has the scopes it was created with, never more
than its owner's role allows.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

SCOPES = ("read", "write", "admin")
_IMPLIED = {"read": {"read"}, "write": {"read", "write"}, "admin": {"read", "write", "admin"}}
ROLE_SCOPES = {"member": frozenset({"read", "write"}), "admin": frozenset({"read", "write", "admin"})}

PUBLIC = "public"            # anyone; a principal is attached when credentials are sent
LOCAL_OR_ADMIN = "local"     # loopback clients not relayed by a proxy, or admins


@dataclasses.dataclass(frozen=True)
class Principal:
    """The authenticated caller."""
    user_id: str
    email: str
    role: str
    scopes: frozenset[str]
    via: str                  # "session" or "token"
    session_id: str | None = None
    token_id: str | None = None

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" and "admin" in self.scopes


def expand(scopes: set[str] | frozenset[str] | tuple[str, ...]) -> frozenset[str]:
    out: set[str] = set()
    for scope in scopes:
        out |= _IMPLIED[scope]
    return frozenset(out)


def token_scopes_allowed(role: str, requested: set[str]) -> bool:
    return expand(requested) <= ROLE_SCOPES[role]


def _declare(policy: str) -> Callable:
    def mark(handler: Callable) -> Callable:
        handler.__access__ = policy
        return handler
    return mark


public = _declare(PUBLIC)
local_or_admin = _declare(LOCAL_OR_ADMIN)


def requires(scope: str) -> Callable:
    """The caller must be signed in with this scope ('admin' also needs the admin role)."""
    assert scope in SCOPES
    return _declare(scope)


def policy_of(handler: Callable) -> str | None:
    return getattr(handler, "__access__", None)


def decide(policy: str, principal: Principal | None, *, local: bool) -> tuple[int, str, str] | None:
    """None when allowed; otherwise (status, code, message). Pure."""
    if policy == PUBLIC:
        return None
    if policy == LOCAL_OR_ADMIN:
        if local or (principal is not None and principal.is_admin):
            return None
        return (403, "forbidden", "served to loopback clients and admins only")
    if principal is None:
        return (401, "unauthorized", "sign in, or send an API token as Authorization: Bearer")
    if policy == "admin" and principal.role != "admin":
        return (403, "forbidden", "administrators only")
    if not principal.has(policy):
        return (403, "insufficient_scope", f"this needs the {policy} scope")
    return None

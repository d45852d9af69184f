"""What every part of identity shares: where a request came from, and its audit row."""

from __future__ import annotations

import dataclasses
import sqlite3

from ...store import audit as audit_store
from ...timeutil import parse


@dataclasses.dataclass(frozen=True)
class Context:
    """Where a request came from, for the audit log."""
    ip: str = ""
    user_agent: str = ""


def audit(conn: sqlite3.Connection, action: str, ctx: Context, *, outcome: str = "success",
          actor_id: str | None = None, target: str = "", **details) -> None:
    """The audit row of a change, in the change's own transaction."""
    audit_store.append(conn, audit_store.Record(action, outcome, actor_id, target, ctx.ip, ctx.user_agent, details))


def epoch(stored: str) -> float:
    """A stored timestamp (timeutil format) as epoch seconds: parsed once, when cached."""
    return parse(stored).timestamp()

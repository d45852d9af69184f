"""The shape agents and workflows share: a resource whose every edit is a new version.

A head table (`agents`: id, owner_id, current_version, created_at, updated_at, deleted_at)
and a versions table (`agent_versions`: the key, version, the resource's own columns,
created_at). `store/agents.py` and `store/workflows.py` describe theirs with a `Versioned`
and keep their public functions; the SQL for the shared shape lives once, here.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any, Callable

from ..timeutil import now_iso


@dataclasses.dataclass(frozen=True)
class Versioned:
    table: str                      # "agents"
    versions: str                   # "agent_versions"
    key: str                        # "agent_id": the versions table's column naming the head
    columns: tuple[str, ...]        # the version's own columns, between `version` and `created_at`
    version: Callable[..., Any]     # the version dataclass, built by keyword from decoded columns
    resource: Callable[..., Any]    # the resource dataclass: id, owner_id, created_at, updated_at, current
    decode: Callable[[dict], dict] = lambda values: values   # stored text → values (JSON columns)
    encode: Callable[[dict], tuple] = lambda fields: ()     # fields → the `columns`' stored values

    @property
    def _version_columns(self) -> tuple[str, ...]:
        return (self.key, "version", *self.columns, "created_at")

    def select(self) -> str:
        cols = ", ".join(f"v.{c} AS v_{c}" for c in self._version_columns)
        return (f"SELECT h.id, h.owner_id, h.created_at, h.updated_at, {cols} FROM {self.table} h "
                f"JOIN {self.versions} v ON v.{self.key} = h.id AND v.version = h.current_version")

    def built(self, row: sqlite3.Row | None):
        if row is None:
            return None
        current = self.version(**self.decode({c: row[f"v_{c}"] for c in self._version_columns}))
        return self.resource(id=row["id"], owner_id=row["owner_id"], created_at=row["created_at"],
                             updated_at=row["updated_at"], current=current)

    def create(self, conn: sqlite3.Connection, resource_id: str, owner_id: str, fields: dict):
        now = now_iso()
        conn.execute(f"INSERT INTO {self.table} (id, owner_id, current_version, created_at, updated_at, deleted_at) "
                     "VALUES (?, ?, 1, ?, ?, NULL)", (resource_id, owner_id, now, now))
        self._insert_version(conn, resource_id, 1, fields, now)
        return self.get_owned(conn, resource_id, owner_id)

    def _insert_version(self, conn: sqlite3.Connection, resource_id: str, version: int, fields: dict,
                        now: str) -> None:
        cols = self._version_columns
        conn.execute(f"INSERT INTO {self.versions} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                     (resource_id, version, *self.encode(fields), now))

    def new_version(self, conn: sqlite3.Connection, resource, fields: dict):
        now = now_iso()
        version = resource.current.version + 1
        self._insert_version(conn, resource.id, version, fields, now)
        conn.execute(f"UPDATE {self.table} SET current_version = ?, updated_at = ? WHERE id = ?",
                     (version, now, resource.id))
        return self.get_owned(conn, resource.id, resource.owner_id)

    def get_owned(self, conn: sqlite3.Connection, resource_id: str, owner_id: str):
        return self.built(conn.execute(self.select() + " WHERE h.id = ? AND h.owner_id = ? AND h.deleted_at IS NULL",
                                       (resource_id, owner_id)).fetchone())

    def get_version(self, conn: sqlite3.Connection, resource_id: str, number: int):
        """A version by number, also of a deleted resource (its runs keep it)."""
        row = conn.execute(f"SELECT {', '.join(self._version_columns)} FROM {self.versions} "
                           f"WHERE {self.key} = ? AND version = ?", (resource_id, number)).fetchone()
        return self.version(**self.decode(dict(row))) if row is not None else None

    def list_owned(self, conn: sqlite3.Connection, owner_id: str, *, limit: int, before: str | None) -> list:
        sql = self.select() + " WHERE h.owner_id = ? AND h.deleted_at IS NULL"
        args: list = [owner_id]
        if before:
            sql += " AND h.created_at < ?"
            args.append(before)
        return [self.built(r) for r in conn.execute(sql + " ORDER BY h.created_at DESC LIMIT ?", (*args, limit))]

    def soft_delete(self, conn: sqlite3.Connection, resource_id: str) -> None:
        conn.execute(f"UPDATE {self.table} SET deleted_at = ? WHERE id = ?", (now_iso(), resource_id))

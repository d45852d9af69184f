"""The app's own state, for health checks, /metrics and the schema report."""

from __future__ import annotations

from ..store import health as health_store
from ..store import stats
from ..store.db import Database
from ..store.health import AppliedMigration


class SystemService:
    def __init__(self, db: Database):
        self.db = db

    async def probe(self, token: str) -> str | None:
        """Write `token` in a transaction of its own, then read it back through a reader."""
        await self.db.write(health_store.write_probe, token)
        return await self.db.read(health_store.read_probe)

    async def schema_version(self) -> int:
        return await self.db.read(health_store.schema_version)

    async def migrations(self) -> list[AppliedMigration]:
        return await self.db.read(health_store.applied_migrations)

    async def run_stats(self) -> tuple[dict[str, int], dict[str, tuple[int, int, int]]]:
        """(runs not yet ended by status, {model: (prompt tokens, completion tokens, runs)})."""
        return await self.db.read(stats.gather)

"""Several instances starting at once on one file migrate it once (store/migrate.py's lock)."""

from __future__ import annotations

import sqlite3
import threading

from agentstead.store.migrate import latest_version, migrate


def test_instances_starting_together_migrate_once(tmp_path):
    path = tmp_path / "agentstead.db"
    reports, errors = [], []
    barrier = threading.Barrier(4)

    def start():
        barrier.wait()
        try:
            reports.append(migrate(path))
        except Exception as exc:   # a second migrator racing the first would fail here
            errors.append(exc)
    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(len(r.applied) for r in reports) == [0, 0, 0, latest_version()]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == latest_version()

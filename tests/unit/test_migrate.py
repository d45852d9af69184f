"""Migrations: fresh, upgrade with a snapshot, refusal of newer or edited schemas."""

from __future__ import annotations

import sqlite3

import pytest

from agentstead.store import migrate as M


def shipped_plus(*extra: tuple[str, str]) -> list[M.Migration]:
    out = list(M.available())
    for name, sql in extra:
        out.append(M.Migration(len(out) + 1, name, sql))
    return out


def version(path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def test_fresh_database_is_created_in_wal_with_every_migration(tmp_path):
    db = tmp_path / "a.db"
    report = M.migrate(db)
    assert report.before == 0 and report.after == M.latest_version() >= 1
    assert report.snapshot is None  # nothing to protect on an empty file
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = conn.execute("SELECT version, name FROM schema_migrations").fetchall()
    assert rows[0] == (1, "init")


def test_second_run_is_a_no_op(tmp_path):
    db = tmp_path / "a.db"
    M.migrate(db)
    again = M.migrate(db)
    assert again.applied == () and again.snapshot is None


def test_upgrade_snapshots_first_and_keeps_the_last_three(tmp_path):
    db = tmp_path / "a.db"
    M.migrate(db)
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO health_probe VALUES (1, 'before-upgrade', 'now')")
    migrations = list(M.available())
    for i in range(4):
        migrations = migrations + [M.Migration(len(migrations) + 1, f"add_t{i}", f"CREATE TABLE t{i} (x);")]
        report = M.migrate(db, migrations=migrations)
        assert report.applied == (len(migrations),)
        assert report.snapshot is not None and report.snapshot.exists()
        with sqlite3.connect(report.snapshot) as snap:
            # the snapshot is the database as it was before this migration
            assert snap.execute("PRAGMA user_version").fetchone()[0] == len(migrations) - 1
            assert snap.execute("SELECT token FROM health_probe").fetchone()[0] == "before-upgrade"
            assert snap.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    snapshots = sorted(tmp_path.glob("a.db.pre-migration-v*"))
    assert len(snapshots) == 3
    assert version(db) == len(migrations)


def test_failed_migration_rolls_back_entirely(tmp_path):
    db = tmp_path / "a.db"
    M.migrate(db)
    bad = shipped_plus(("half", "CREATE TABLE ok_table (x); INSERT INTO missing_table VALUES (1);"))
    latest = M.latest_version()
    with pytest.raises(M.MigrationError, match=f"{latest + 1:04d}_half failed and was rolled back"):
        M.migrate(db, migrations=bad)
    assert version(db) == latest
    with sqlite3.connect(db) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema")}
    assert "ok_table" not in names


def test_newer_database_is_refused_with_a_clear_message(tmp_path):
    db = tmp_path / "a.db"
    M.migrate(db, migrations=shipped_plus(("future", "CREATE TABLE future (x);")))
    newer = M.latest_version() + 1
    with pytest.raises(M.MigrationError, match=f"schema version {newer}, newer than this Agentstead knows"):
        M.migrate(db)
    assert version(db) == newer  # untouched


def test_edited_migration_is_refused(tmp_path):
    db = tmp_path / "a.db"
    M.migrate(db)
    shipped = M.available()
    edited = [M.Migration(1, "init", shipped[0].sql + "\n-- edited"), *shipped[1:]]
    with pytest.raises(M.MigrationError, match="changed after it was applied"):
        M.migrate(db, migrations=edited)


def test_not_a_database_is_refused(tmp_path):
    db = tmp_path / "a.db"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(M.MigrationError, match="not a usable SQLite database"):
        M.migrate(db)


def test_migration_files_are_numbered_without_gaps(tmp_path):
    (tmp_path / "0001_a.sql").write_text("")
    (tmp_path / "0003_c.sql").write_text("")
    with pytest.raises(M.MigrationError, match="0002 is missing"):
        M.available(tmp_path)
    (tmp_path / "2_bad.sql").write_text("")
    with pytest.raises(M.MigrationError, match="not named NNNN_name.sql"):
        M.available(tmp_path)


def test_0006_keeps_every_stored_event_under_its_seq_and_the_sequence_never_goes_back(tmp_path):
    """Events stored one copy per topic (0003) become one event per old row, on its topic,
    with its old seq: cursors clients hold keep their meaning; the next seq continues
    after the highest ever assigned, also when retention had deleted the newest rows."""
    db = tmp_path / "a.db"
    M.migrate(db, migrations=list(M.available())[:5])
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO events (topic, type, data, at) VALUES (?, ?, ?, ?)",
                         [("runs/r", "run.queued", '{"run_id": "r"}', "2026-01-01T00:00:00.000000Z"),
                          ("threads/t", "run.queued", '{"run_id": "r"}', "2026-01-01T00:00:00.000000Z"),
                          ("users/u", "run.queued", '{"run_id": "r"}', "2026-01-01T00:00:00.000000Z"),
                          ("runs/r", "run.started", '{"run_id": "r"}', "2026-01-01T00:00:01.000000Z")])
        conn.execute("DELETE FROM events WHERE seq = 4")   # retention took the newest; seq 4 stays used
    assert M.migrate(db).applied[0] == 6
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT seq, topic, type FROM topic_events ORDER BY seq").fetchall() == [
            (1, "runs/r", "run.queued"), (2, "threads/t", "run.queued"), (3, "users/u", "run.queued")]
        conn.execute("INSERT INTO events (type, data, at) VALUES ('x', '{}', 'now')")
        assert conn.execute("SELECT max(seq) FROM events").fetchone()[0] == 5
        conn.execute("DELETE FROM events WHERE seq = 1")   # its topic link goes with it
        assert conn.execute("SELECT count(*) FROM event_topics WHERE seq = 1").fetchone()[0] == 0
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

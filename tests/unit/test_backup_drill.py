"""The drill's checks and its record, and the restore's guards, on temp files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from agentstead.backup import BackupError
from agentstead.backup.config import paths
from agentstead.backup.drill import check_restored, compare_counts, row_counts, run_drill
from agentstead.backup.restore import holders, parse_timestamp, sidecars
from agentstead.backup.status import read_drill
from agentstead.settings import Settings


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(state_dir=str(tmp_path / "state"), backup_enabled=True,
                    backup_local_path=str(tmp_path / "replica"))


def make_db(path, rows: int = 3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
                       "CREATE TABLE _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER);"
                       "CREATE TABLE \"odd \"\"name\" (x);"
                       "CREATE TABLE counter (id INTEGER PRIMARY KEY AUTOINCREMENT);")
    conn.executemany("INSERT INTO notes (body) VALUES (?)", [("n",)] * rows)
    conn.execute("INSERT INTO _litestream_seq VALUES (1, 7)")
    conn.commit()
    conn.close()


def test_row_counts_skip_sqlite_and_litestream_tables(tmp_path):
    make_db(tmp_path / "a.db")
    conn = sqlite3.connect(tmp_path / "a.db")
    assert row_counts(conn) == {"counter": 0, "notes": 3, 'odd "name': 0}


def test_compare_counts():
    assert compare_counts({"a": 1, "b": 2}, {"a": 1, "b": 2}) == ""
    diff = compare_counts({"a": 1, "b": 2, "c": 0}, {"a": 1, "b": 1, "d": 5})
    assert diff == ("b: 1 rows restored, 2 live; table c missing from the restored copy; "
                    "table d only in the restored copy")
    many = compare_counts({f"t{i}": 1 for i in range(8)}, {})
    assert many.endswith("(and 3 more)")


def test_check_restored_reports_integrity_and_counts(tmp_path):
    make_db(tmp_path / "good.db")
    assert check_restored(tmp_path / "good.db") == (["ok"], {"counter": 0, "notes": 3, 'odd "name': 0})
    # Damage a b-tree page (not the header): integrity_check must say so.
    data = bytearray((tmp_path / "good.db").read_bytes())
    page = 4096  # page 2: the notes table's b-tree
    data[page + 8: page + 200] = b"\xff" * 192
    (tmp_path / "bad.db").write_bytes(bytes(data))
    problems, counts = check_restored(tmp_path / "bad.db")
    assert problems != ["ok"] and counts == {}
    assert "out of range" in problems[0] or "malformed" in problems[0], problems


def test_drill_without_litestream_records_the_reason(settings):
    make_db(settings.db_file)
    result = run_drill(settings)
    assert not result["ok"]
    assert result["reason"].startswith("litestream is not running")
    assert "agentstead-litestream.service" in result["reason"]
    recorded = json.loads(paths(settings).drill.read_text())
    assert recorded == result and read_drill(settings) == result
    assert result["duration_seconds"] >= 0 and result["at"].endswith("Z")


def test_drill_without_a_live_database(settings):
    result = run_drill(settings)
    assert not result["ok"] and result["reason"].startswith("no live database at")
    assert not settings.db_file.exists()  # the drill never creates it


def test_unreadable_drill_record_is_a_failed_drill(settings):
    paths(settings).drill.parent.mkdir(parents=True)
    paths(settings).drill.write_text("{not json")
    assert read_drill(settings)["ok"] is False


@pytest.mark.parametrize("text, iso", [("2026-03-01T14:30:00Z", "2026-03-01T14:30:00+00:00"),
                                       ("2026-03-01T15:30:00.25+01:00", "2026-03-01T14:30:00.250000+00:00")])
def test_timestamps_are_rfc3339_with_a_zone(text, iso):
    assert parse_timestamp(text).isoformat() == iso


@pytest.mark.parametrize("text", ["yesterday", "2026-03-01T14:30:00", "2026-13-01T00:00:00Z"])
def test_bad_timestamps_are_refused(text):
    with pytest.raises(BackupError, match="--timestamp"):
        parse_timestamp(text)


def test_holders_names_the_process_with_the_file_open(tmp_path):
    db = tmp_path / "x.db"
    make_db(db)
    proc = subprocess.Popen([sys.executable, "-c", "import sys, time; f = open(sys.argv[1], 'rb'); "
                             "print('open', flush=True); time.sleep(60)", str(db)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "open"
        found = holders(sidecars(db))
        assert [pid for pid, _ in found] == [proc.pid]
        assert str(db) in found[0][1]
    finally:
        proc.kill()
        proc.wait()
    assert holders(sidecars(db)) == []

"""The backup check of /readyz and the metrics, from gathered facts (pure)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from agentstead.backup.status import LitestreamState, evaluate, iso, lag_seconds, parse_time
from agentstead.metrics import Metrics
from agentstead.settings import Settings

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
SETTINGS = Settings(state_dir="/var/lib/agentstead", backup_enabled=True, backup_max_lag=60.0,
                    backup_drill_max_age=36 * 3600.0)


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


def running(last_sync: float | None = 0.5, started: float = 3600) -> LitestreamState:
    return LitestreamState(running=True, status="replicating", started_at=ago(started),
                           last_sync_at=None if last_sync is None else ago(last_sync))


def drill(ok: bool = True, age: float = 3600, reason: str = "") -> dict:
    out = {"ok": ok, "at": iso(ago(age)), "position": "000000000000002a", "lag_seconds": 0.4,
           "duration_seconds": 1.2}
    if reason:
        out["reason"] = reason
    return out


def test_parse_time_takes_go_nanoseconds_and_zones():
    assert parse_time("2026-11-25T19:19:18.909157424Z") == dt.datetime(
        2026, 11, 25, 19, 19, 18, 909157, tzinfo=dt.timezone.utc)
    assert parse_time("2026-11-25T20:19:18+01:00") == dt.datetime(2026, 11, 25, 19, 19, 18, tzinfo=dt.timezone.utc)
    assert parse_time(None) is None


def test_healthy():
    report = evaluate(SETTINGS, running(), drill(), NOW)
    assert report.ok and report.check["ok"] and "error" not in report.check
    assert report.check["lag_seconds"] == 0.5 and report.check["litestream"] == "replicating"
    assert report.check["last_drill"]["position"] == "000000000000002a"
    assert report.drill_ok is True and report.drill_timestamp == ago(3600).timestamp()


def test_litestream_not_running():
    state = LitestreamState(running=False, error="litestream is not running (nothing answers on /x)")
    report = evaluate(SETTINGS, state, drill(), NOW)
    assert not report.ok and report.lag_seconds is None and not report.litestream_up
    assert report.check["litestream"] == "not running"
    assert report.check["error"].startswith("litestream is not running")


def test_lag_beyond_the_limit_names_the_last_sync():
    report = evaluate(SETTINGS, running(last_sync=75), drill(), NOW)
    assert not report.ok and report.lag_seconds == 75
    assert "replication lag 75s exceeds 60s" in report.check["error"]
    assert iso(ago(75)) in report.check["error"]


def test_before_the_first_sync_lag_counts_from_litestreams_start():
    assert lag_seconds(running(last_sync=None, started=3), NOW) == 3
    assert not evaluate(SETTINGS, running(last_sync=None, started=90), drill(), NOW).ok


def test_stopped_database():
    state = LitestreamState(running=True, status="stopped", started_at=ago(10), last_sync_at=ago(1))
    report = evaluate(SETTINGS, state, drill(), NOW)
    assert not report.ok and "not replicating" in report.check["error"]


def test_failed_drill_carries_its_reason():
    report = evaluate(SETTINGS, running(), drill(ok=False, reason="row counts differ"), NOW)
    assert not report.ok and report.drill_ok is False
    assert "the last restore drill failed" in report.check["error"] and "row counts differ" in report.check["error"]


def test_stale_drill():
    report = evaluate(SETTINGS, running(), drill(age=40 * 3600), NOW)
    assert not report.ok and "agentstead-backup-drill.timer" in report.check["error"]


@pytest.mark.parametrize("uptime, ok", [(3600, True), (40 * 3600, False)])
def test_no_drill_yet_is_fine_until_the_first_one_is_due(uptime, ok):
    report = evaluate(SETTINGS, running(started=uptime), None, NOW)
    assert report.ok is ok and report.check["last_drill"] is None and report.drill_ok is None


def test_metrics_appear_once_backups_report():
    metrics = Metrics()
    assert b"agentstead_backup" not in metrics.render()
    metrics.set_backup(evaluate(SETTINGS, running(), drill(), NOW))
    text = metrics.render().decode()
    assert "agentstead_backup_replication_lag_seconds 0.5" in text
    assert "agentstead_backup_drill_success 1.0" in text
    stamp = re.search(r"^agentstead_backup_drill_timestamp_seconds (\S+)$", text, re.M).group(1)
    assert float(stamp) == pytest.approx(ago(3600).timestamp())
    metrics.set_backup(evaluate(SETTINGS, LitestreamState(running=False, error="down"), None, NOW))
    text = metrics.render().decode()
    assert "agentstead_backup_replication_lag_seconds NaN" in text
    assert "agentstead_backup_drill_success NaN" in text and "agentstead_backup_litestream_up 0.0" in text

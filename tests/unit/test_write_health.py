"""store/write_health.py: recent write outcomes, in a window, as /readyz reads them (a
clock that the test moves; the rules only)."""

from __future__ import annotations

import sqlite3

from agentstead.store.write_health import WriteHealth, is_write_failure


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_a_stream_of_failures_is_failing_a_blip_degraded_and_both_clear_with_the_window():
    clock = Clock()
    health = WriteHealth(window=30, clock=clock)
    assert health.report().state == "ok"
    error = sqlite3.OperationalError("disk I/O error")
    for _ in range(7):          # 70 % of the writes fail, the newest among them
        health.failed(error)
    for _ in range(3):
        health.succeeded()
    report = health.report()
    assert (report.writes, report.failures, report.state) == (10, 7, "failing")   # the newest went through
    assert "disk I/O error" in report.last_error
    health.failed(error)
    assert health.report().last_failed and health.report().state == "failing"
    heard = []
    health.on_recovery(lambda: heard.append(True))
    health.succeeded()
    assert heard == [True]       # the first success after a failure is announced once
    health.succeeded()
    assert heard == [True]
    clock.t += 31                # the failures leave the window
    health.succeeded()
    assert health.report().state == "ok" and (health.total_ok, health.total_failed) == (6, 8)
    health.failed(error)         # a single failure, then writes go through: a blip
    health.succeeded()
    assert health.report().state == "degraded"


def test_a_write_failure_is_the_databases_not_a_domain_error():
    assert is_write_failure(sqlite3.OperationalError("database is locked"))
    assert is_write_failure(sqlite3.DatabaseError("database disk image is malformed"))
    assert is_write_failure(OSError(28, "No space left on device"))
    assert not is_write_failure(sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert not is_write_failure(ValueError("no such thread"))

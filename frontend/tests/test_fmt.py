"""Formatting helpers: ISO times without datetime, durations, counts, queries."""

import fmt


def test_iso_ms():
    assert fmt.iso_ms("1970-01-01T00:00:00Z") == 0
    assert fmt.iso_ms("2026-11-25T21:53:47.123456Z") == 1795643627123
    assert fmt.iso_ms("2026-11-25T22:53:47+01:00") == 1795643627000
    assert fmt.iso_ms("2000-02-29T00:00:00.5Z") == 951782400500
    assert fmt.iso_ms(None) is None and fmt.iso_ms("garbage-and-more-text") is None


def test_durations():
    assert fmt.duration(None) == "—"
    assert fmt.duration(850) == "850 ms"
    assert fmt.duration(12300) == "12.3 s"
    assert fmt.duration(245000) == "4 min 05 s"
    assert fmt.duration(7380000) == "2 h 03 min"
    run = {"status": "succeeded", "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:02.5Z"}
    assert fmt.run_duration(run, 0) == 2500
    active = {"status": "running", "started_at": "2026-01-01T00:00:00Z", "finished_at": None}
    assert fmt.run_duration(active, fmt.iso_ms("2026-01-01T00:01:00Z")) == 60000
    assert fmt.run_duration({"status": "queued", "started_at": None}, 5) is None


def test_counts_and_queries():
    assert fmt.count(0) == "0" and fmt.count(1234567) == "1,234,567" and fmt.count(None) == "—"
    assert fmt.short(950) == "950" and fmt.short(1200) == "1.2k" and fmt.short(3000000) == "3M"
    assert fmt.query({"status": "failed", "limit": 100, "x": ""}) == "?limit=100&status=failed"
    assert fmt.query({"q": "a b&c"}) == "?q=a%20b%26c"
    assert fmt.query({}) == ""
    assert fmt.when("2026-11-25T21:53:47Z") == "2026-11-25 21:53" and fmt.when(None) == ""

"""Prometheus metrics, one registry per app (tests build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import HistogramMetricFamily

from .monitoring_metrics import MonitoringMetrics
from .store.write_health import LOCK_WAIT_BUCKETS

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "agentstead_http_requests", "HTTP requests by route template, method and status.",
            ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "agentstead_http_request_duration_seconds", "HTTP request latency by route template.",
            ["method", "route"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge(
            "agentstead_http_requests_in_flight", "HTTP requests being handled now.",
            registry=self.registry)
        self.first_pages = Histogram(
            "agentstead_first_page_duration_seconds", "Page loads the app drew the first view of (GET /page): "
            "drawn, left to the SPA (an answer that was not a success, an effect for the browser) or failed.",
            ["outcome"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.db_probe = Histogram(
            "agentstead_db_probe_duration_seconds", "Latency of the /readyz database write+read probe.",
            buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.db_probe_ok = Gauge(
            "agentstead_db_probe_success", "1 when the last database probe succeeded.",
            registry=self.registry)

        self.db_writes = Counter(
            "agentstead_db_writes", "Database write transactions by outcome (failed: I/O, full disk, locked).",
            ["outcome"], registry=self.registry)
        self.db_write_failures_recent = Gauge(
            "agentstead_db_write_failures_recent", "Database writes that failed within the /readyz window.",
            registry=self.registry)
        self.db_writes_recent = Gauge(
            "agentstead_db_writes_recent", "Database writes within the /readyz window.", registry=self.registry)
        self.db_writes_state = Gauge(
            "agentstead_db_writes_ok", "1 when no write failed in the window, 0.5 degraded (some failed), "
            "0 failing (the newest failed, or 3+ and 10 % of the window's did).", registry=self.registry)
        self._written = (0, 0)
        self._lock_waits = None   # store.write_health.LockWaits, from set_writes
        self.registry.register(_LockWaitCollector(self))

        self._backup: _BackupGauges | None = None
        # Event loop lag, how runs end, WebSockets, disk, database files, usage by model and
        # process_*: what monitoring/ (alert rules, dashboard) reads (monitoring_metrics.py).
        self.monitoring = MonitoringMetrics(self.registry)

    def set_backup(self, report) -> None:
        """Export a backup.status.Report. The gauges exist only once backups are enabled."""
        if self._backup is None:
            self._backup = _BackupGauges(self.registry)
        self._backup.update(report)

    def set_writes(self, health) -> None:
        """Export a store.write_health.WriteHealth: totals as counters, the window as gauges."""
        ok, failed = health.total_ok, health.total_failed
        self.db_writes.labels("ok").inc(ok - self._written[0])
        self.db_writes.labels("failed").inc(failed - self._written[1])
        self._written = (ok, failed)
        self._lock_waits = health.lock_waits
        report = health.report()
        self.db_writes_recent.set(report.writes)
        self.db_write_failures_recent.set(report.failures)
        self.db_writes_state.set({"ok": 1, "degraded": 0.5, "failing": 0}[report.state])

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LockWaitCollector:
    """agentstead_db_lock_wait_seconds: counted in the writer's thread (store/write_health.py)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self):
        return []

    def collect(self):
        waits = self.metrics._lock_waits
        if waits is None:
            return
        buckets, seen = [], 0
        for bound, n in zip((*map(str, LOCK_WAIT_BUCKETS), "+Inf"), list(waits.counts)):
            seen += n
            buckets.append((bound, seen))
        yield HistogramMetricFamily(
            "agentstead_db_lock_wait_seconds", "How long write transactions waited for the database's write "
            "lock (BEGIN IMMEDIATE): another instance's transaction, a checkpoint.", buckets=buckets,
            sum_value=waits.sum)


class _BackupGauges:
    """agentstead_backup_*: refreshed from the backup report on each scrape and /readyz."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(f"agentstead_backup_{name}", doc, registry=registry)

        self.lag = gauge("replication_lag_seconds", "Seconds since Litestream last brought the replica level with "
                         "the database; NaN when unknown.")
        self.up = gauge("litestream_up", "1 when Litestream answers on its control socket.")
        self.ok = gauge("ok", "1 when the /readyz backup check passes (lag, drill, Litestream).")
        self.drill_success = gauge("drill_success", "1 when the last restore drill passed, 0 when it failed; "
                                   "NaN before the first drill.")
        self.drill_timestamp = gauge("drill_timestamp_seconds", "Unix time of the last restore drill; 0 before "
                                     "the first.")
        self.max_lag = gauge("max_lag_seconds", "AGENTSTEAD_BACKUP_MAX_LAG: the lag /readyz (and the alert) allows.")

    def update(self, report) -> None:
        nan = float("nan")
        self.lag.set(nan if report.lag_seconds is None else report.lag_seconds)
        self.up.set(1 if report.litestream_up else 0)
        self.ok.set(1 if report.ok else 0)
        self.drill_success.set(nan if report.drill_ok is None else int(report.drill_ok))
        self.drill_timestamp.set(report.drill_timestamp or 0)
        self.max_lag.set(report.check.get("max_lag_seconds", nan))

"""The metrics monitoring/ reads besides requests and backups: the alert rules and the
Grafana dashboard name only what is defined here, in metrics.py, or by Caddy and the
blackbox exporter (tests/system/test_prometheus.py checks that against a live /metrics).

Counted as things happen: event loop lag, runs that ended, WebSocket closes and events
sent. Read when /metrics is scraped (observe.refresh fills `state`): disk, database files,
active runs, tokens and runs by model, events appended to the log.
"""

from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

LOOP_TICK = 0.25   # seconds between two event loop lag samples
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# How runs end (the run.* event), as the `status` label; failed runs also carry their code.
RUN_ENDS = {"run.succeeded": "succeeded", "run.failed": "failed", "run.cancelled": "cancelled",
            "run.interrupted": "interrupted"}

# WebSocket close codes the server sends, as the `reason` label; "peer" is everything
# else: the client closed or went away, or the server shut down.
WEBSOCKET_CLOSES = {4008: "slow_consumer", 4001: "session_ended", 1008: "too_many_errors", 1001: "idle_timeout"}


class Tally:
    """A count on a hot path: a plain int (one event loop, no lock), exported at scrape time."""
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


@dataclasses.dataclass
class State:
    """What /metrics gathers when it is scraped; None until the first scrape."""
    disk_free: int | None = None
    disk_min_free: int | None = None
    db_bytes: int | None = None
    wal_bytes: int | None = None
    events_appended: int | None = None
    bus: dict | None = None   # the NATS bus's check() (several instances); None: the embedded bus
    runs_active: dict[str, int] = dataclasses.field(default_factory=dict)
    # model -> (prompt tokens, completion tokens, runs), all time (usage_daily)
    usage: dict[str, tuple[int, int, int]] = dataclasses.field(default_factory=dict)


class MonitoringMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        ProcessCollector(registry=registry)    # process_start_time_seconds, memory, CPU, open files
        PlatformCollector(registry=registry)   # python_info
        self.loop_lag = Histogram(
            "agentstead_event_loop_lag_seconds",
            f"How late the event loop ran a timer set every {LOOP_TICK:g} s: time the loop was busy elsewhere.",
            buckets=_LAG_BUCKETS, registry=registry)
        self.runs_finished = Counter(
            "agentstead_runs_finished", "Runs that ended, by status; `code` is a failed run's error code "
            "(provider_error, run_timeout, budget_exceeded, ...).", ["status", "code"], registry=registry)
        self.websocket_closes = Counter(
            "agentstead_websocket_closes", "WebSockets that ended, by reason (slow_consumer: the client "
            "read too slowly and its send queue overflowed; peer: the client left).", ["reason"], registry=registry)
        # Series that exist from the start, so that rate() sees their first increase.
        for status in RUN_ENDS.values():
            if status != "failed":
                self.runs_finished.labels(status, "")
        for reason in (*WEBSOCKET_CLOSES.values(), "peer"):
            self.websocket_closes.labels(reason)
        self.websockets_open = Gauge("agentstead_websockets_open", "WebSockets open now.", registry=registry)
        self.websocket_events = Tally()
        self.state = State()
        registry.register(_StateCollector(self))

    def run_ended(self, event_type: str, data: dict) -> None:
        """Count a run.* event that ends a run (others are ignored)."""
        status = RUN_ENDS.get(event_type)
        if status is not None:
            self.runs_finished.labels(status, str(data.get("code", "")) if status == "failed" else "").inc()

    def websocket_closed(self, close_code: int | None) -> None:
        self.websocket_closes.labels(WEBSOCKET_CLOSES.get(close_code, "peer")).inc()


class _StateCollector:
    """Exports State and the tallies as they are when the registry is rendered."""

    def __init__(self, metrics: MonitoringMetrics) -> None:
        self.metrics = metrics

    def describe(self):
        return []   # nothing to register eagerly; the families appear with their values

    def collect(self):
        s, m = self.metrics.state, self.metrics
        gauges = (
            ("agentstead_disk_free_bytes", "Free bytes on the filesystem of the state directory.", s.disk_free),
            ("agentstead_disk_min_free_bytes", "AGENTSTEAD_MIN_FREE_DISK: /readyz fails below it.", s.disk_min_free),
            ("agentstead_db_size_bytes", "Size of the SQLite database file.", s.db_bytes),
            ("agentstead_db_wal_size_bytes", "Size of the database's write-ahead log (-wal file).", s.wal_bytes),
        )
        for name, doc, value in gauges:
            if value is not None:
                yield GaugeMetricFamily(name, doc, value=value)
        yield CounterMetricFamily("agentstead_websocket_events_sent", "Events sent to WebSocket clients "
                                  "(live and replayed).", value=m.websocket_events.n)
        if s.events_appended is not None:
            yield CounterMetricFamily("agentstead_events_appended", "Events appended to the event log "
                                      "by this process.", value=s.events_appended)
        yield from _bus_families(s.bus)
        active = GaugeMetricFamily("agentstead_runs_active", "Runs not yet ended, by status.", labels=["status"])
        for status in ("queued", "running", "waiting_for_input"):
            active.add_metric([status], s.runs_active.get(status, 0))
        yield active
        tokens = CounterMetricFamily("agentstead_model_tokens", "Tokens used, by model and kind "
                                     "(prompt, completion), from the usage table.", labels=["model", "kind"])
        runs = CounterMetricFamily("agentstead_model_runs", "Runs started, by model (workflow runs "
                                   "under 'workflow'), from the usage table.", labels=["model"])
        for model, (prompt, completion, count) in sorted(s.usage.items()):
            tokens.add_metric([model, "prompt"], prompt)
            tokens.add_metric([model, "completion"], completion)
            runs.add_metric([model], count)
        yield tokens
        yield runs


def _bus_families(bus: dict | None):
    """The NATS bus (several instances): how events from the others arrived. `heard` rising is
    the fast path; `filled` rising alone is the log doing NATS's work (NATS down, messages lost)."""
    if bus is None or bus.get("kind") != "nats":
        return
    yield GaugeMetricFamily("agentstead_bus_nats_connected", "1 when this instance is connected to NATS.",
                            value=1 if bus["ok"] else 0)
    yield CounterMetricFamily("agentstead_bus_events_heard", "Events of other instances heard over NATS "
                              "(the fast path).", value=bus["heard"])
    yield CounterMetricFamily("agentstead_bus_events_filled", "Events of other instances read from the event "
                              "log because NATS had not brought them in time (NATS down, a message lost or late).",
                              value=bus["filled_from_log"])
    yield CounterMetricFamily("agentstead_bus_messages_published", "NATS messages this instance sent (each "
                              "carries the events of one or more commits).", value=bus["published"])

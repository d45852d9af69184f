"""Prometheus metrics, one registry per app (tests build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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
        self.db_probe = Histogram(
            "agentstead_db_probe_duration_seconds", "Latency of the /readyz database write+read probe.",
            buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.db_probe_ok = Gauge(
            "agentstead_db_probe_success", "1 when the last database probe succeeded.",
            registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""OpenTelemetry traces: the app's tracer provider and its OTLP/HTTP exporter.

Off unless AGENTSTEAD_TRACING_ENDPOINT is set: then nothing here is built, no span is
started anywhere (every hook checks `tracer is None`) and no exporter thread runs.
On, the app owns its TracerProvider (never the process-global one: one process may hold
several apps, and the global provider can be set only once); the request middleware
(http/tracing.py), the runner (runner/traced.py) and the model/tool hooks get its tracer.
Spans go out in batches from the SDK's BatchSpanProcessor thread (OTEL_BSP_* tune it), so
an exporter that is slow, refuses or is unreachable costs the event loop nothing: a batch
it could not send is dropped (as are spans once its queue is full), and one log line says
so (`_Reporting`).
What each span holds: docs/monitoring.md, Tracing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Sequence

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from .settings import Settings

log = logging.getLogger("agentstead.tracing")
EXPORT_TIMEOUT = 5.0   # seconds per export request (the SDK's default is 10): bounds a flush at shutdown
TRACER_NAME = "agentstead"


class _Reporting(SpanExporter):
    """The OTLP exporter, saying once when exports start failing and once when they work
    again (the SDK logs every failed batch at its own, noisier level)."""

    def __init__(self, exporter: SpanExporter, endpoint: str) -> None:
        self.exporter, self.endpoint = exporter, endpoint
        self.failing = False
        self.exported = self.failed = 0   # spans, for tests and `doctor`-style checks

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.exporter.export(spans)
        except Exception as exc:   # never let the exporter's thread die on a surprise
            log.warning("tracing: exporting spans raised %r", exc)
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
            if self.failing:
                self.failing = False
                log.info("tracing: spans reach %s again", self.endpoint)
        else:
            self.failed += len(spans)
            if not self.failing:
                self.failing = True
                log.warning("tracing: could not send %d spans to %s (unreachable, refused, or not an OTLP/HTTP "
                            "traces endpoint: check AGENTSTEAD_TRACING_ENDPOINT); requests and runs go on, "
                            "their spans are dropped until it answers", len(spans), self.endpoint)
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class Tracing:
    """The app's tracing: `tracer` is None when it is off."""

    def __init__(self, settings: Settings, version: str = "") -> None:
        self.endpoint = settings.tracing_endpoint
        self.provider: TracerProvider | None = None
        self.tracer: trace.Tracer | None = None
        self.exporter: _Reporting | None = None
        self._settings = settings
        if not self.endpoint:
            return
        # Resource.create also merges OTEL_RESOURCE_ATTRIBUTES (deployment.environment, host.name, ...).
        resource = Resource.create({"service.name": settings.tracing_service_name,
                                    **({"service.version": version} if version else {})})
        self.provider = TracerProvider(resource=resource, shutdown_on_exit=False,
                                       sampler=ParentBased(TraceIdRatioBased(settings.tracing_sample_ratio)))
        self.tracer = self.provider.get_tracer(TRACER_NAME, version or None)

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    def start(self) -> None:
        """The exporter and its batching thread (spans started before this are dropped)."""
        if self.provider is None or self.exporter is not None:
            return
        exporter = OTLPSpanExporter(endpoint=self.endpoint, headers=dict(self._settings.tracing_headers),
                                    timeout=EXPORT_TIMEOUT)
        self.exporter = _Reporting(exporter, self.endpoint)
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))
        log.info("tracing on: spans go to %s", self.endpoint)

    async def flush(self, timeout: float = 10.0) -> bool:
        """Send every ended span now (off the event loop)."""
        if self.provider is None:
            return True
        return await asyncio.to_thread(self.provider.force_flush, int(timeout * 1000))

    async def stop(self) -> None:
        """Send what is left, then stop the thread (off the event loop: at most one export timeout)."""
        if self.provider is not None and self.exporter is not None:
            await asyncio.to_thread(self.provider.shutdown)


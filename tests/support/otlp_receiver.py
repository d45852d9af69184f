"""A small but real OTLP/HTTP traces receiver for tests.

An aiohttp application on 127.0.0.1 (a free port) that takes `POST /v1/traces` the way
an OpenTelemetry Collector, Jaeger or Tempo does: a protobuf `ExportTraceServiceRequest`
(gzip or not), decoded with the protocol's own schema (opentelemetry-proto), answered
with an `ExportTraceServiceResponse`. Every span is kept as a `Span` (ids as hex).

    async with OTLPReceiver() as otlp:
        otlp.endpoint                    # http://127.0.0.1:<port>/v1/traces
        otlp.status = 503                # answer every export with this status instead
        await otlp.wait_for(lambda spans: any(s.name == "run chat" for s in spans))
        otlp.requests                    # export requests received (headers included)
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
from typing import Any, Callable

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                      ExportTraceServiceResponse)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_STATUS = {0: "unset", 1: "ok", 2: "error"}


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, which) if which else None


@dataclasses.dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str              # "" for a root span
    kind: str                   # server, client, internal, ...
    attributes: dict[str, Any]
    status: str                 # unset, ok, error
    status_message: str
    events: list[tuple[str, dict]]
    links: list[tuple[str, str]]   # (trace id, span id)
    start_ns: int
    end_ns: int
    resource: dict[str, Any]
    scope: str

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


class OTLPReceiver:
    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.requests: list[dict[str, str]] = []   # the headers of each export
        self.status = 200
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self._export)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> OTLPReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_for(self, ready: Callable[[list[Span]], Any], timeout: float = 15.0) -> list[Span]:
        """Wait until `ready(spans)` is true; returns the spans."""
        async with asyncio.timeout(timeout):
            while not ready(self.spans):
                self._changed.clear()
                await self._changed.wait()
        return self.spans

    def named(self, name: str) -> list[Span]:
        return [s for s in self.spans if s.name == name]

    async def _export(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.headers))
        if self.status != 200:
            return web.Response(status=self.status, text="refused by the test")
        if request.content_type != "application/x-protobuf":
            return web.Response(status=415, text="OTLP/HTTP protobuf only")
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        for resource_spans in message.resource_spans:
            resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    self.spans.append(Span(
                        name=s.name, trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                        parent_id=s.parent_span_id.hex(), kind=_KINDS.get(s.kind, str(s.kind)),
                        attributes={kv.key: _value(kv.value) for kv in s.attributes},
                        status=_STATUS.get(s.status.code, str(s.status.code)), status_message=s.status.message,
                        events=[(e.name, {kv.key: _value(kv.value) for kv in e.attributes}) for e in s.events],
                        links=[(ln.trace_id.hex(), ln.span_id.hex()) for ln in s.links],
                        start_ns=s.start_time_unix_nano, end_ns=s.end_time_unix_nano,
                        resource=resource, scope=scope_spans.scope.name))
        self._changed.set()
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

"""`agentstead serve` with AGENTSTEAD_TRACING_* in its environment: the settings turn tracing
on in the real process, its spans reach a real OTLP/HTTP receiver with the service name and
the headers configured (the headers from a credentials file, as systemd hands them over),
and the last spans are sent when SIGTERM stops it."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from ..support.otlp_receiver import OTLPReceiver
from ..support.procs import Server


async def test_serve_sends_its_spans_and_flushes_them_at_sigterm(tmp_path):
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "tracing_headers").write_text("Authorization=Bearer%20collector-token\n")
    async with OTLPReceiver() as otlp:
        server = Server(tmp_path / "state", AGENTSTEAD_TRACING_ENDPOINT=otlp.endpoint,
                        AGENTSTEAD_TRACING_SERVICE_NAME="agents-eu-1", CREDENTIALS_DIRECTORY=str(creds))
        await asyncio.to_thread(server.start)
        try:
            async with aiohttp.ClientSession() as http:
                resp = await http.get(server.url + "/api/me")
                assert resp.status == 401
                request_id = resp.headers["X-Request-ID"]
        finally:
            await asyncio.to_thread(server.stop)   # SIGTERM; the receiver keeps answering meanwhile
        assert server.proc.returncode == 0, server.logs()[-3000:]
        (span,) = otlp.named("GET /api/me")
        assert span.resource["service.name"] == "agents-eu-1"
        assert span.attributes["agentstead.request_id"] == request_id
        assert span.attributes["http.response.status_code"] == 401
        assert otlp.requests[0]["Authorization"] == "Bearer collector-token"
        lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
        assert any(line.get("msg") == f"tracing on: spans go to {otlp.endpoint}" for line in lines), lines[-5:]

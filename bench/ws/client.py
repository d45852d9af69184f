#!/usr/bin/env python3
"""WebSocket load client for bench/ws/run.py: many sockets in one process, cheap per message.

A minimal RFC 6455 client on asyncio protocols (uvloop): the handshake is written by hand
(with `Authorization: Bearer`), server frames are parsed in bulk per `data_received`, and
only text frames starting with {"op":"event" are decoded (orjson) to read `data.t`, the
publish time. Pings are answered (the server's heartbeat), close frames are recorded. This
keeps the load generator far cheaper per message than the server, so on a 2-core machine
the server is what gets measured. The same code talks to the app directly or through Caddy.

Control: one JSON command per line on stdin, one JSON answer per line on stdout.
  started with --host --port --token --topic --sockets: connects and subscribes every
  socket, then prints {"ready": n, "failed": k, "seconds": s}.
  {"cmd": "reset"}  zero the counters and the latency histogram.
  {"cmd": "stats"}  counters since the last reset: events, first/last receive time
                    (time.monotonic()), latency histogram, sockets open / closed (+codes).
  {"cmd": "quit"}   close every socket and exit.
Latency = receive time (taken once per read, before parsing) - `t` of the event.
Histogram: bucket b covers [e^(b/100), e^((b+1)/100)) microseconds (1 % wide).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import resource
import sys
import time
from collections import Counter

import orjson

EVENT_PREFIX = b'{"op":"event"'
SUBSCRIBED = b'{"op":"subscribed"'


class Stats:
    def __init__(self) -> None:
        self.reset()
        self.open = 0
        self.closed: Counter[int] = Counter()
        self.failed = 0

    def reset(self) -> None:
        self.events = 0
        self.first = 0.0
        self.last = 0.0
        self.hist: Counter[int] = Counter()
        self.other = 0


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (must be masked); mask key 0 leaves the payload as is."""
    n = len(payload)
    if n < 126:
        header = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        header = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    return header + b"\0\0\0\0" + payload


class WS(asyncio.Protocol):
    def __init__(self, stats: Stats, host: str, port: int, path: str, token: str, topic: str):
        self.stats = stats
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                        f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n"
                        "User-Agent: agentstead-bench-ws\r\n\r\n").encode()
        self.subscribe = masked_frame(0x1, json.dumps({"op": "subscribe", "topic": topic}).encode())
        self.buf = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before subscribed: {exc}"))
        if self.upgraded:
            self.stats.open -= 1
            self.stats.closed[self.close_code or 1006] += 1

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:end]).split(b"\r\n", 1)[0]
            if b" 101 " not in status:
                self.ready.set_exception(ConnectionError(f"handshake refused: {bytes(buf[:300])!r}"))
                self.transport.close()
                return
            del buf[: end + 4]
            self.upgraded = True
            self.stats.open += 1
            self.transport.write(self.subscribe)
        stats = self.stats
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            hdr = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 4], "big")
                hdr = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 10], "big")
                hdr = 10
            if b1 & 0x80:
                hdr += 4  # servers never mask; tolerated anyway (payload would need unmasking)
            if size - pos < hdr + length:
                break
            opcode = buf[pos] & 0x0F
            start = pos + hdr
            pos = start + length
            if opcode == 0x1:
                payload = bytes(buf[start:pos])
                if payload.startswith(EVENT_PREFIX):
                    t = orjson.loads(payload)["data"].get("t")
                    stats.events += 1
                    if stats.first == 0.0:
                        stats.first = now
                    stats.last = now
                    if t:
                        us = (now - t) * 1e6
                        stats.hist[int(math.log(us) * 100) if us > 1 else 0] += 1
                elif payload.startswith(SUBSCRIBED):
                    if not self.ready.done():
                        self.ready.set_result(None)
                elif payload.startswith(b'{"op":"error"') and not self.ready.done():
                    self.ready.set_exception(ConnectionError(payload.decode(errors="replace")[:300]))
                else:
                    stats.other += 1
            elif opcode == 0x9:                       # ping -> pong with the same payload
                self.transport.write(masked_frame(0xA, bytes(buf[start:pos])))
            elif opcode == 0x8:
                self.close_code = int.from_bytes(buf[start:start + 2], "big") if length >= 2 else 1005
                self.transport.write(masked_frame(0x8, bytes(buf[start:start + 2])))
                self.transport.close()
                break
        del buf[:pos]


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/ws")
    p.add_argument("--token", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--sockets", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=50, help="handshakes in flight at once")
    args = p.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    loop = asyncio.get_running_loop()
    stats = Stats()
    conns: list[WS] = []
    gate = asyncio.Semaphore(args.concurrency)

    async def connect_one() -> None:
        async with gate:
            try:
                async with asyncio.timeout(30):
                    _, proto = await loop.create_connection(
                        lambda: WS(stats, args.host, args.port, args.path, args.token, args.topic),
                        args.host, args.port)
                    conns.append(proto)
                    await proto.ready
            except Exception as exc:  # counted; the report shows failed sockets
                stats.failed += 1
                print(json.dumps({"warning": f"{type(exc).__name__}: {exc}"[:300]}), file=sys.stderr)

    t0 = time.monotonic()
    await asyncio.gather(*(connect_one() for _ in range(args.sockets)))
    out = sys.stdout
    out.write(json.dumps({"ready": sum(1 for c in conns if c.ready.done() and not c.ready.exception()),
                          "failed": stats.failed, "seconds": time.monotonic() - t0}) + "\n")
    out.flush()

    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line).get("cmd")
        if cmd == "reset":
            stats.reset()
            answer = {"ok": True}
        elif cmd == "stats":
            answer = {"events": stats.events, "first": stats.first, "last": stats.last, "other": stats.other,
                      "hist": {str(k): v for k, v in stats.hist.items()}, "open": stats.open,
                      "closed": {str(k): v for k, v in stats.closed.items()}}
        elif cmd == "quit":
            break
        else:
            answer = {"error": f"unknown command {cmd!r}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()
    for c in conns:
        if c.transport is not None and not c.transport.is_closing():
            c.transport.write(masked_frame(0x8, (1000).to_bytes(2, "big")))
            c.transport.close()
    await asyncio.sleep(0.2)
    return 0


if __name__ == "__main__":
    try:
        import uvloop
        sys.exit(uvloop.run(main()))
    except ImportError:
        sys.exit(asyncio.run(main()))

"""A WebSocket test client that validates every server message against asyncapi.yaml."""

from __future__ import annotations

import asyncio
import json
from functools import lru_cache
from importlib import resources

import aiohttp
import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SERVER_MESSAGES = ("Event", "Subscribed", "Unsubscribed", "Error", "Pong")
CLIENT_MESSAGES = ("Subscribe", "Unsubscribe", "Ping")


@lru_cache(maxsize=1)
def spec() -> dict:
    text = resources.files("agentstead.contracts").joinpath("asyncapi.yaml").read_text()
    return yaml.safe_load(text)


@lru_cache(maxsize=8)
def validator(kind: str):
    names = SERVER_MESSAGES if kind == "server" else CLIENT_MESSAGES
    resource = Resource.from_contents(spec(), default_specification=DRAFT202012)
    registry = Registry().with_resource("urn:asyncapi", resource)
    schema = {"oneOf": [{"$ref": f"urn:asyncapi#/components/messages/{n}/payload"} for n in names]}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def check_server_message(message: dict) -> None:
    validator("server").validate(message)


class Live:
    """An open /ws connection; every message received is checked against the contract."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.seen = 0

    async def send(self, message: dict) -> None:
        validator("client").validate(message)
        await self.ws.send_str(json.dumps(message))

    async def recv(self, timeout: float = 10.0) -> dict:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket closed: {msg.type} {msg.data!r} {msg.extra!r}")
        message = json.loads(msg.data)
        check_server_message(message)
        self.seen += 1
        return message

    async def until(self, op: str, timeout: float = 10.0, **match) -> dict:
        """The next message with this op (and fields); other messages are skipped."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.recv(timeout)
                if message["op"] == op and all(message.get(k) == v for k, v in match.items()):
                    return message

    async def events(self, n: int, timeout: float = 10.0) -> list[dict]:
        out = []
        async with asyncio.timeout(timeout):
            while len(out) < n:
                message = await self.recv(timeout)
                if message["op"] == "event":
                    out.append(message)
        return out

    async def closed(self, timeout: float = 10.0) -> int:
        """Wait for the server to close; returns the close code."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.ws.receive()
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    return self.ws.close_code if self.ws.close_code is not None else msg.data
                if msg.type == aiohttp.WSMsgType.TEXT:
                    check_server_message(json.loads(msg.data))

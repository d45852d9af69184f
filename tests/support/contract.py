"""A test client that validates every response it sees against openapi.yaml."""

from __future__ import annotations

import functools
import json
import re

from aiohttp import web
from aiohttp.test_utils import TestClient
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from agentstead.app import load_openapi

_SPEC: OpenAPI | None = None


def spec() -> OpenAPI:
    global _SPEC
    if _SPEC is None:
        _SPEC = OpenAPI.from_dict(load_openapi())
    return _SPEC


@functools.lru_cache(maxsize=1)
def _paths() -> dict:
    return load_openapi()["paths"]


def template_for(method: str, path: str) -> str | None:
    """The documented path template that matches a concrete path and method."""
    for template, operations in _paths().items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            return template
    return None


def validate(method: str, path: str, status: int, content_type: str, body: bytes,
             request_body: bytes | None = None, request_content_type: str = "application/json") -> None:
    """Raise when the response does not match the documented one."""
    request = MockRequest("http://127.0.0.1:47293", method.lower(), path,
                          data=request_body, content_type=request_content_type)
    response = MockResponse(body, status_code=status, content_type=content_type)
    spec().validate_response(request, response)


class ContractClient:
    """Wraps aiohttp's TestClient; documented routes' responses are validated."""

    def __init__(self, client: TestClient, app: web.Application):
        self.raw = client
        self.app = app
        self.validated = 0

    async def request(self, method: str, path: str, *, validate_contract: bool = True, **kwargs):
        resp = await self.raw.request(method, path, **kwargs)
        body = await resp.read()
        if validate_contract and self._is_documented(method, path):
            sent = kwargs.get("data") or (json.dumps(kwargs["json"]).encode() if "json" in kwargs else None)
            validate(method, path.split("?")[0], resp.status, resp.content_type, body,
                     request_body=sent if isinstance(sent, bytes) else None)
            self.validated += 1
        return resp

    def _is_documented(self, method: str, path: str) -> bool:
        return template_for(method, path.split("?")[0]) is not None

    async def get(self, path: str, **kw):
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw):
        return await self.request("POST", path, **kw)

    async def patch(self, path: str, **kw):
        return await self.request("PATCH", path, **kw)

    async def delete(self, path: str, **kw):
        return await self.request("DELETE", path, **kw)


_COMPAT: OpenAPI | None = None


class CompatChecks:
    """An httpx response hook (for the openai and langgraph SDKs' clients) that validates
    every response of the protocol adapters against contracts/openapi-compat.yaml; an
    event stream by its status and content type (its body is the stream the test reads)."""

    def __init__(self):
        self.validated = 0

    async def __call__(self, response) -> None:
        global _COMPAT
        if _COMPAT is None:
            _COMPAT = OpenAPI.from_dict(load_openapi("openapi-compat.yaml"))
        content_type = response.headers.get("content-type", "").split(";")[0]
        body = b"(the stream)" if content_type == "text/event-stream" else await response.aread()
        request = MockRequest("http://127.0.0.1:47293", response.request.method.lower(), response.request.url.path,
                              data=response.request.content or None, content_type="application/json")
        _COMPAT.validate_response(request, MockResponse(body, status_code=response.status_code,
                                                        content_type=content_type))
        self.validated += 1

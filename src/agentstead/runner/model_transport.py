"""The model client's HTTP transport: the openai SDK's requests carried by aiohttp.

The openai SDK sends through httpx2 → httpcore → anyio → h11, all Python, once per socket
read; with 50 streams at 30 tokens/s that is a read per token and it was the largest share
of the event loop's time (31 %, bench/RESULTS.md, Chat, "50 concurrent chats"). This is an
httpx2 transport, so the SDK still builds every request (body, headers, auth, timeouts) and
decides retries, backoff, Retry-After and the error classes from the responses it gets;
aiohttp (already the server's library, with a C HTTP parser) carries the bytes. A streamed
body's blocks are also offered in the response's extensions (model_client.BLOCKS) so that the SSE reader
(model_client.sse_data) takes its blocks straight from aiohttp rather than through httpx2's
byte-stream layers. One aiohttp session per event loop, shared by every model client.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import AsyncIterator

import aiohttp
import httpx2
import openai

from .model_client import BLOCKS
# Not forwarded: aiohttp sets its own framing headers, and asks only for encodings it can decode
# (it decodes them itself, so the response's Content-Encoding is dropped too).
_REQUEST_SKIP = frozenset(("host", "content-length", "transfer-encoding", "connection", "accept-encoding"))
_RESPONSE_SKIP = frozenset((b"content-encoding", b"content-length", b"transfer-encoding"))


def as_httpx(err: BaseException) -> Exception | None:
    """aiohttp's and asyncio's errors as the httpx2 errors the openai SDK maps (timeouts to
    APITimeoutError, the rest to APIConnectionError); None for anything else."""
    if isinstance(err, aiohttp.ConnectionTimeoutError):
        return httpx2.ConnectTimeout(str(err) or "connect timed out")
    if isinstance(err, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return httpx2.ReadTimeout(str(err) or "read timed out")
    if isinstance(err, aiohttp.ClientConnectorError):
        return httpx2.ConnectError(str(err))
    if isinstance(err, (aiohttp.ClientError, ConnectionError)):
        return httpx2.ReadError(str(err) or type(err).__name__)
    return None


class _Body(httpx2.AsyncByteStream):
    """An aiohttp response's body as httpx2 reads it (error bodies, non-streamed replies),
    and as sse_data reads it (`blocks`)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    def blocks(self) -> AsyncIterator[bytes]:
        return self.__aiter__()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for block in self.response.content.iter_any():
                yield block
        except Exception as err:
            mapped = as_httpx(err)
            if mapped is None:
                raise
            raise mapped from err

    async def aclose(self) -> None:
        # A body read to its end gives the connection back to the pool; one left unread (a
        # cancelled stream) closes it, which is how the provider learns to stop.
        if self.response.content.at_eof():
            self.response.release()
        else:
            self.response.close()


class AiohttpTransport(httpx2.AsyncBaseTransport):
    """httpx2 requests sent with aiohttp, one ClientSession per event loop."""

    def __init__(self) -> None:
        self._sessions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            # As the SDK's pool: up to 1,000 connections, idle ones kept 5 s; proxies from the environment;
            # certificates verified against what httpx2 verifies them with.
            connector = aiohttp.TCPConnector(limit=1000, keepalive_timeout=5.0, ssl=httpx2.create_ssl_context())
            session = aiohttp.ClientSession(connector=connector, trust_env=True)
            self._sessions[loop] = session
        return session

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        timeout = request.extensions.get("timeout", {})
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() not in _REQUEST_SKIP]
        body = await request.aread()
        try:
            response = await self.session().request(
                request.method, str(request.url), headers=headers, data=body or None, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=None, connect=timeout.get("pool"),
                                              sock_connect=timeout.get("connect"), sock_read=timeout.get("read")))
        except Exception as err:
            mapped = as_httpx(err)
            if mapped is None:
                raise
            raise mapped from err
        body = _Body(response)
        return httpx2.Response(
            response.status, headers=[(k, v) for k, v in response.raw_headers if k.lower() not in _RESPONSE_SKIP],
            stream=body, request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode(),
                        BLOCKS: body.blocks})

    async def aclose(self) -> None:
        """Closes this loop's session (its pooled connections)."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()


TRANSPORT = AiohttpTransport()


def http_client() -> httpx2.AsyncClient:
    """The httpx2 client the openai SDK is given (its own defaults: redirects followed, its
    timeout and pool limits), its requests going through TRANSPORT."""
    return openai.DefaultAsyncHttpxClient(transport=TRANSPORT)

"""A small but real OpenAI-compatible chat server for tests.

It is an aiohttp application bound to 127.0.0.1 on a free port that speaks the
OpenAI Chat Completions wire protocol closely enough for the real ``openai``
SDK (and ``langchain_openai.ChatOpenAI`` on top of it) to stream from it,
parse tool calls, read usage and map errors to the SDK's exception classes.

    llm = LLMServer(api_key="sk-test", models=["gpt-test", "gpt-other"])
    await llm.start()               # llm.base_url == "http://127.0.0.1:<port>/v1"
    llm.script = Script([Turn("Hello there"), Turn(tool_calls=[ToolCall("f", {"x": 1})])])
    llm.script = Script(lambda body: Turn("..."))   # decide per request
    llm.tokens_per_second = 200.0   # streaming rate; 0 = no delay
    llm.faults = [Fault("status", status=429, retry_after=1.5), Fault("drop", after_tokens=3)]
    llm.requests                    # parsed JSON body of every POST /v1/chat/completions
    llm.cancelled                   # chat responses aborted by the client (disconnect)
    await llm.wait_cancelled(1)     # wait until the server has noticed an abort
    await llm.stop()

The server runs on the caller's event loop, so the client must be async
(``ainvoke`` / ``astream``); a blocking client call would deadlock the loop.

Order of processing for ``POST /v1/chat/completions``:

1. the body is parsed (invalid JSON -> 400) and appended to ``requests``;
2. the first queued fault, if any, is popped; a ``"status"`` fault answers
   right away (before authentication and model checks);
3. authentication (``Authorization: Bearer <api_key>``) -> 401 ``invalid_api_key``;
4. body validation (``model`` and ``messages`` required) -> 400;
   unknown model -> 404 ``model_not_found``;
5. the next turn of ``script`` is taken (each request answered with 200
   consumes one turn, also when it is then dropped, stalled or cancelled)
   and sent, streamed or not.

Tokens: text is split into word-ish tokens (``"Hello world!"`` ->
``["Hello", " world!"]``), one chunk per token; tool-call arguments (JSON)
are split into fragments at word/punctuation boundaries, one chunk each.
``completion_tokens`` = text tokens + argument fragments; ``prompt_tokens`` =
whitespace-separated words in all messages (text contents, tool-call names
and arguments) unless the turn overrides it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import re
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal

from aiohttp import web

__all__ = ["Fault", "LLMServer", "Script", "ToolCall", "Turn", "split_arguments", "split_tokens"]


# -- scripting -----------------------------------------------------------------

@dataclasses.dataclass
class ToolCall:
    """One tool call of an assistant turn.  ``arguments`` may also be a raw
    string (sent verbatim, e.g. deliberately malformed JSON)."""

    name: str
    arguments: dict[str, Any] | str = dataclasses.field(default_factory=dict)
    id: str | None = None

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclasses.dataclass
class Turn:
    """One assistant reply: text (streamed first), then tool calls.

    ``prompt_tokens`` overrides the counted prompt size; ``finish_reason``
    overrides the natural one ("tool_calls" when there are tool calls, else
    "stop"), e.g. "length" or "content_filter"."""

    text: str = ""
    tool_calls: list[ToolCall] = dataclasses.field(default_factory=list)
    prompt_tokens: int | None = None
    finish_reason: str | None = None


TurnLike = Turn | str
ScriptFn = Callable[[dict[str, Any]], "TurnLike | None | Awaitable[TurnLike | None]"]


def _as_turn(value: TurnLike | None) -> Turn | None:
    if value is None or isinstance(value, Turn):
        return value
    if isinstance(value, str):
        return Turn(text=value)
    raise TypeError(f"a script must produce Turn or str, got {value!r}")


class Script:
    """What the model answers.

    ``Script([Turn(...), "plain text", ...])``: each chat request answered
    with 200 takes the next turn; once they are used up the server echoes.
    ``Script(fn)``: ``fn(request_body)`` (sync or async) returns the Turn (or
    a str) for every request; returning None means echo.
    """

    def __init__(self, turns: Iterable[TurnLike] | ScriptFn = ()) -> None:
        self._fn: ScriptFn | None = None
        self.turns: list[Turn] = []
        if callable(turns):
            self._fn = turns
        else:
            self.turns = [t for t in (_as_turn(x) for x in turns) if t is not None]
        self.used = 0  # turns handed out so far

    @property
    def remaining(self) -> int:
        return 0 if self._fn is not None else len(self.turns) - self.used

    async def next_turn(self, body: dict[str, Any]) -> Turn | None:
        if self._fn is not None:
            result = self._fn(body)
            if inspect.isawaitable(result):
                result = await result
            self.used += 1
            return _as_turn(result)
        if self.used < len(self.turns):
            turn = self.turns[self.used]
            self.used += 1
            return turn
        return None


@dataclasses.dataclass
class Fault:
    """A one-shot failure for the next chat request.

    - ``Fault("status", status=429, retry_after=2.0)``: an error response in
      OpenAI's shape; ``message``/``code``/``error_type`` override defaults.
    - ``Fault("drop", after_tokens=3)``: the connection is aborted after that
      many tokens (non-streaming: aborted before any response).
    - ``Fault("stall", after_tokens=3, seconds=2.0, then="continue")``: no
      bytes for ``seconds`` after that many tokens, then ``then`` is one of
      "continue" (the rest of the turn), "end" (finish chunk, usage and
      [DONE] right away: a truncated but well-formed reply) or "drop".
      Non-streaming: the whole reply is delayed by ``seconds``.
    """

    kind: Literal["status", "drop", "stall"]
    status: int = 500
    retry_after: float | None = None
    message: str | None = None
    code: str | None = None
    error_type: str | None = None
    after_tokens: int = 0
    seconds: float = 1.0
    then: Literal["continue", "end", "drop"] = "continue"

    def __post_init__(self) -> None:
        if self.kind not in ("status", "drop", "stall"):
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.then not in ("continue", "end", "drop"):
            raise ValueError(f"unknown stall continuation {self.then!r}")


# -- tokenisation ----------------------------------------------------------------

_WORDISH = re.compile(r"\s*\S+|\s+")
_ARGISH = re.compile(r"\s*\w+|\s*[^\w\s]+|\s+")


def split_tokens(text: str) -> list[str]:
    """Word-ish tokens whose concatenation is exactly ``text``."""
    return _WORDISH.findall(text)


def split_arguments(arguments: str) -> list[str]:
    """Argument fragments (word / punctuation runs) whose concatenation is
    exactly ``arguments``; at least one fragment."""
    return _ARGISH.findall(arguments) or [arguments]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text", None)
        )
    return ""


def count_prompt_tokens(messages: Sequence[Any]) -> int:
    total = 0
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        total += len(_content_text(msg.get("content")).split())
        for tc in msg.get("tool_calls") or ():
            fn = (tc or {}).get("function") or {}
            total += len(str(fn.get("name", "")).split()) + len(str(fn.get("arguments", "")).split())
    return total


def last_user_text(messages: Sequence[Any]) -> str:
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return _content_text(msg.get("content"))
    return ""


# -- errors ----------------------------------------------------------------------

_DEFAULT_ERRORS: dict[int, tuple[str, str | None, str]] = {
    # status: (type, code, message)
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported."),
    404: ("invalid_request_error", "model_not_found",
          "The model does not exist or you do not have access to it."),
    408: ("timeout", "timeout", "Request timed out."),
    409: ("invalid_request_error", "conflict", "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", "server_error",
          "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", "bad_gateway", "Bad gateway."),
    503: ("server_error", "service_unavailable", "The engine is currently overloaded, please try again later."),
    504: ("server_error", "timeout", "Gateway timeout."),
}


def error_response(status: int, message: str | None = None, *, code: str | None = None,
                   error_type: str | None = None, param: str | None = None,
                   retry_after: float | None = None) -> web.Response:
    d_type, d_code, d_message = _DEFAULT_ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error."))
    body = {"error": {
        "message": message if message is not None else d_message,
        "type": error_type if error_type is not None else d_type,
        "param": param,
        "code": code if code is not None else d_code,
    }}
    headers = {"x-request-id": "req_" + secrets.token_hex(12)}
    if retry_after is not None:
        ra = float(retry_after)
        headers["Retry-After"] = str(int(ra)) if ra.is_integer() else repr(ra)
    return web.json_response(body, status=status, headers=headers)


class _Dropped(Exception):
    """Internal: the server aborted the connection on purpose (drop fault)."""


# -- the server ------------------------------------------------------------------

class LLMServer:
    """An OpenAI-compatible chat server on 127.0.0.1 (see module docstring)."""

    def __init__(self, api_key: str | None = "sk-test",
                 models: Sequence[str] = ("gpt-test",), *,
                 tokens_per_second: float = 1000.0, owned_by: str = "agentstead-tests") -> None:
        self.api_key = api_key                 # None: no authentication
        self.models: list[str] = list(models)
        self.owned_by = owned_by
        self.tokens_per_second = tokens_per_second
        self._script = Script()
        self.faults: list[Fault] = []
        self.requests: list[dict[str, Any]] = []
        self.cancelled = 0                     # responses aborted by the client
        self.completed = 0                     # chat responses fully sent
        self.active = 0                        # chat responses in progress
        self._cancel_event = asyncio.Event()
        self._created = int(time.time())
        self._runner: web.AppRunner | None = None
        self._stopping = False
        self.port: int | None = None

    # -- configuration ----------------------------------------------------------

    @property
    def script(self) -> Script:
        return self._script

    @script.setter
    def script(self, value: Script | Iterable[TurnLike] | ScriptFn | None) -> None:
        if value is None:
            value = Script()
        elif not isinstance(value, Script):
            value = Script(value)
        self._script = value

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("LLMServer is not started")
        return f"http://127.0.0.1:{self.port}/v1"

    # -- lifecycle --------------------------------------------------------------

    async def start(self, port: int = 0) -> None:
        if self._runner is not None:
            return
        self._stopping = False
        app = web.Application()
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        app.router.add_post("/v1/chat/completions", self._chat)
        # handler_cancellation: a client disconnect cancels the handler at
        # once (even while it sleeps between chunks), so aborts are noticed.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5,
                               handler_cancellation=True)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self._stopping = True
            await runner.cleanup()

    async def __aenter__(self) -> LLMServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_cancelled(self, count: int = 1, timeout: float = 2.0) -> None:
        """Wait until ``cancelled >= count`` (TimeoutError otherwise)."""
        async with asyncio.timeout(timeout):
            while self.cancelled < count:
                self._cancel_event.clear()
                await self._cancel_event.wait()

    # -- helpers ----------------------------------------------------------------

    def _auth_error(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return error_response(
                401, "You didn't provide an API key. You need to provide your API key in an "
                     "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code="invalid_api_key")
        token = token.strip()
        if not secrets.compare_digest(token.encode(), self.api_key.encode()):
            shown = token[:3] + "*" * max(0, len(token) - 7) + token[-4:] if len(token) > 8 else "***"
            return error_response(
                401, f"Incorrect API key provided: {shown}. You can find your API key at "
                     "https://platform.openai.com/account/api-keys.", code="invalid_api_key")
        return None

    def _model_entry(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": self._created, "owned_by": self.owned_by}

    def _model_not_found(self, model: str) -> web.Response:
        return error_response(
            404, f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found")

    def _delay(self) -> float:
        tps = self.tokens_per_second
        return 1.0 / tps if tps and tps > 0 else 0.0

    def _note_cancel(self) -> None:
        if not self._stopping:
            self.cancelled += 1
            self._cancel_event.set()

    # -- handlers ---------------------------------------------------------------

    async def _list_models(self, request: web.Request) -> web.Response:
        if (err := self._auth_error(request)) is not None:
            return err
        return web.json_response({"object": "list", "data": [self._model_entry(m) for m in self.models]})

    async def _get_model(self, request: web.Request) -> web.Response:
        if (err := self._auth_error(request)) is not None:
            return err
        model = request.match_info["model"]
        if model not in self.models:
            return self._model_not_found(model)
        return web.json_response(self._model_entry(model))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error_response(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict):
            return error_response(400, "The request body must be a JSON object.")
        self.requests.append(body)

        fault = self.faults.pop(0) if self.faults else None
        if fault is not None and fault.kind == "status":
            return error_response(fault.status, fault.message, code=fault.code,
                                  error_type=fault.error_type, retry_after=fault.retry_after)

        if (err := self._auth_error(request)) is not None:
            return err
        model = body.get("model")
        messages = body.get("messages")
        if not isinstance(model, str) or not model:
            return error_response(400, "you must provide a model parameter", param="model")
        if not isinstance(messages, list) or not messages:
            return error_response(400, "'messages' must be a non-empty array", param="messages",
                                  code="invalid_value" if isinstance(messages, list) else None)
        if model not in self.models:
            return self._model_not_found(model)

        turn = await self._script.next_turn(body)
        if turn is None:
            turn = Turn(text="echo: " + last_user_text(messages))
        prompt_tokens = turn.prompt_tokens if turn.prompt_tokens is not None else count_prompt_tokens(messages)

        self.active += 1
        try:
            if body.get("stream"):
                resp = await self._stream(request, body, model, turn, prompt_tokens, fault)
            else:
                resp = await self._complete(request, model, turn, prompt_tokens, fault)
            self.completed += 1
            return resp
        except _Dropped:
            # Abort was ours; aiohttp's final write_eof() then fails quietly.
            return web.Response(status=500)
        except asyncio.CancelledError:
            self._note_cancel()
            raise
        except ConnectionResetError:
            # A write hit the closed connection before the cancellation did.
            self._note_cancel()
            return web.Response(status=499)
        finally:
            self.active -= 1

    # -- replies ----------------------------------------------------------------

    @staticmethod
    def _plan(turn: Turn) -> tuple[list[str], list[tuple[str, str, list[str]]]]:
        """(text tokens, [(call id, name, argument fragments), ...])."""
        text_tokens = split_tokens(turn.text) if turn.text else []
        calls = [(tc.id or "call_" + secrets.token_hex(12), tc.name, split_arguments(tc.arguments_json()))
                 for tc in turn.tool_calls]
        return text_tokens, calls

    @staticmethod
    def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }

    @staticmethod
    def _abort(request: web.Request) -> None:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise _Dropped()

    async def _complete(self, request: web.Request, model: str, turn: Turn,
                        prompt_tokens: int, fault: Fault | None) -> web.Response:
        text_tokens, calls = self._plan(turn)
        completion_tokens = len(text_tokens) + sum(len(frags) for _, _, frags in calls)
        if fault is not None and fault.kind == "drop":
            self._abort(request)
        if fault is not None and fault.kind == "stall":
            await asyncio.sleep(fault.seconds)
            if fault.then == "drop":
                self._abort(request)
        # Generating takes as long as streaming would.
        if (delay := self._delay()) and completion_tokens:
            await asyncio.sleep(delay * completion_tokens)
        message: dict[str, Any] = {"role": "assistant", "content": turn.text or None, "refusal": None}
        if calls:
            message["tool_calls"] = [
                {"id": cid, "type": "function", "function": {"name": name, "arguments": "".join(frags)}}
                for cid, name, frags in calls]
        finish = turn.finish_reason or ("tool_calls" if calls else "stop")
        return web.json_response({
            "id": "chatcmpl-" + secrets.token_hex(12),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_test",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": self._usage(prompt_tokens, completion_tokens),
        }, headers={"x-request-id": "req_" + secrets.token_hex(12)})

    async def _stream(self, request: web.Request, body: dict[str, Any], model: str, turn: Turn,
                      prompt_tokens: int, fault: Fault | None) -> web.StreamResponse:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        text_tokens, calls = self._plan(turn)
        chunk_id = "chatcmpl-" + secrets.token_hex(12)
        created = int(time.time())

        resp = web.StreamResponse(headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "x-request-id": "req_" + secrets.token_hex(12),
        })
        await resp.prepare(request)

        async def send(data: dict[str, Any] | str) -> None:
            payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
            await resp.write(f"data: {payload}\n\n".encode())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            out: dict[str, Any] = {
                "id": chunk_id, "object": "chat.completion.chunk", "created": created,
                "model": model, "system_fingerprint": "fp_test",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                out["usage"] = None
            return out

        # The token-carrying deltas, in order.
        deltas: list[dict[str, Any]] = [{"content": tok} for tok in text_tokens]
        for index, (cid, name, frags) in enumerate(calls):
            deltas.append({"tool_calls": [{"index": index, "id": cid, "type": "function",
                                           "function": {"name": name, "arguments": frags[0]}}]})
            deltas.extend({"tool_calls": [{"index": index, "function": {"arguments": frag}}]}
                          for frag in frags[1:])

        await send(chunk({"role": "assistant", "content": "", "refusal": None}))
        delay = self._delay()
        sent = 0
        for i, delta in enumerate(deltas):
            if fault is not None and sent == fault.after_tokens:
                if fault.kind == "drop":
                    self._abort(request)
                if fault.kind == "stall":
                    await asyncio.sleep(fault.seconds)
                    if fault.then == "drop":
                        self._abort(request)
                    if fault.then == "end":
                        break
            if i and delay:
                await asyncio.sleep(delay)
            await send(chunk(delta))
            sent += 1
        else:
            # after_tokens >= the number of tokens: the fault strikes at the end.
            if fault is not None and sent <= fault.after_tokens and fault.kind == "drop":
                self._abort(request)
            if fault is not None and sent <= fault.after_tokens and fault.kind == "stall":
                await asyncio.sleep(fault.seconds)
                if fault.then == "drop":
                    self._abort(request)

        completion_tokens = sent
        finish = turn.finish_reason or ("tool_calls" if calls else "stop")
        await send(chunk({}, finish))
        if include_usage:
            await send({"id": chunk_id, "object": "chat.completion.chunk", "created": created,
                        "model": model, "system_fingerprint": "fp_test", "choices": [],
                        "usage": self._usage(prompt_tokens, completion_tokens)})
        await send("[DONE]")
        await resp.write_eof()
        return resp


async def _serve_forever(port: int) -> None:
    server = LLMServer(api_key=None)
    await server.start(port)
    print(f"llm_server: {server.base_url} (model gpt-test, echoes the last user message)", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    # `python llm_server.py PORT`: the NixOS VM test (nixos/tests/appliance.nix) runs it as a service.
    import sys

    asyncio.run(_serve_forever(int(sys.argv[1])))

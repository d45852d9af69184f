"""Runs inside Open WebUI's own venv (bench/.venv-openwebui; bench/openwebui/run.py starts it):
n chats at once against a running Open WebUI, as its browser app or an OpenAI client does.

  drive.py --base URL --tokens-file F --model M --mode chat|proxy --n N
  stdin: one line "go" starts the chats (after "ready" on stdout); then one JSON line on stdout:
  {"chats": [{"times": [...], "tokens": [...], "status": "..."}]} (perf_counter seconds)

chat: per chat one user (one browser): a socket.io connection (/ws/socket.io, its token),
then POST /api/chat/completions as the web app sends a new chat's first message (parent_id
null, the user message, the assistant message's id, the socket's session id); the reply
arrives as `events` on the socket (0.12: `response:completion` events carrying
`response.output_text.delta`s, then `chat:completion` with done). Done when an event says done.
proxy: POST /openai/chat/completions with stream: true (its OpenAI-compatible proxy); SSE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid

import aiohttp
import socketio

DEBUG = bool(os.environ.get("DRIVE_DEBUG"))   # every socket.io event to stderr


def words_of_output(output) -> int:
    """Words of the text in an Open WebUI `output` list (message items with content parts)."""
    total = 0
    for item in output or ():
        if not isinstance(item, dict):
            continue
        content = item.get("content")
        if isinstance(content, str):
            total += len(content.split())
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += len(part["text"].split())
    return total


class Chat:
    def __init__(self):
        self.times: list[float] = []
        self.tokens: list[int] = []
        self.seen = 0
        self.streamed = 0
        self.status = ""
        self.done = asyncio.get_running_loop().create_future()

    def text_so_far(self, words: int) -> None:
        if words > self.seen:
            self.times.append(time.perf_counter())
            self.tokens.append(words - self.seen)
            self.seen = words

    def finish(self, status: str) -> None:
        if not self.done.done():
            self.status = status
            self.done.set_result(None)


async def chat_path(http, base, token, model, chat: Chat, go: asyncio.Event, ready: asyncio.Queue):
    sio = socketio.AsyncClient(reconnection=False)
    message_id = str(uuid.uuid4())

    @sio.on("events")
    async def on_event(payload):
        if DEBUG:
            print(json.dumps(payload)[:400], file=sys.stderr)
        if payload.get("message_id") != message_id:
            return
        event = payload.get("data") or {}
        if event.get("type") not in ("chat:completion", "response:completion"):
            return
        data = event.get("data") or {}
        if data.get("type") == "response.output_text.delta" and isinstance(data.get("delta"), str):
            chat.streamed += len(data["delta"].split())       # 0.12 streams text as Responses API deltas
            chat.text_so_far(chat.streamed)
        elif isinstance(data.get("content"), str):
            chat.text_so_far(len(data["content"].split()))
        elif isinstance(data.get("output"), list):
            chat.text_so_far(words_of_output(data["output"]))
        if data.get("error"):
            chat.finish(f"error: {data['error']}")
        elif data.get("done"):
            chat.finish("done")

    await sio.connect(base, socketio_path="/ws/socket.io", transports=["websocket"], auth={"token": token})
    try:
        ready.put_nowait(1)
        await go.wait()
        user_message = {"id": str(uuid.uuid4()), "parentId": None, "childrenIds": [message_id], "role": "user",
                        "content": "hello", "timestamp": int(time.time()), "models": [model]}
        body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "hello"}],
                "params": {}, "features": {}, "variables": {}, "parent_id": None, "user_message": user_message,
                "id": message_id, "session_id": sio.get_sid("/"), "background_tasks": {}}
        async with http.post(base + "/api/chat/completions", json=body,
                             headers={"Authorization": f"Bearer {token}"}) as r:
            if r.status != 200:
                chat.finish(f"http {r.status}: {(await r.text())[:300]}")
            await r.read()
        await asyncio.wait_for(chat.done, 180)
    finally:
        await sio.disconnect()


async def proxy_path(http, base, token, model, chat: Chat, go: asyncio.Event, ready: asyncio.Queue):
    ready.put_nowait(1)
    await go.wait()
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "hello"}]}
    async with http.post(base + "/openai/chat/completions", json=body,
                         headers={"Authorization": f"Bearer {token}"}) as r:
        if r.status != 200:
            chat.finish(f"http {r.status}: {(await r.text())[:300]}")
            return
        words = 0
        async for line in r.content:
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            obj = json.loads(data)
            for choice in obj.get("choices") or ():
                text = (choice.get("delta") or {}).get("content")
                if text:
                    words += len(text.split())
            chat.text_so_far(words)
        chat.finish("done")


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--tokens-file", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--mode", choices=("chat", "proxy"), required=True)
    p.add_argument("--n", type=int, required=True)
    args = p.parse_args()
    tokens = json.loads(open(args.tokens_file).read())
    go, ready = asyncio.Event(), asyncio.Queue()
    run = chat_path if args.mode == "chat" else proxy_path
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300),
                                     connector=aiohttp.TCPConnector(limit=0)) as http:
        chats = [Chat() for _ in range(args.n)]
        tasks = [asyncio.create_task(run(http, args.base, tokens[i % len(tokens)], args.model, c, go, ready))
                 for i, c in enumerate(chats)]
        for _ in range(args.n):
            await asyncio.wait_for(ready.get(), 60)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        go.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for c, r in zip(chats, results):
            if isinstance(r, BaseException):
                c.status = c.status or f"{type(r).__name__}: {r}"
    print(json.dumps({"chats": [{"times": c.times, "tokens": c.tokens, "status": c.status} for c in chats]}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

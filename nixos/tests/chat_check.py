"""What a person does in the browser, over HTTP: sign in with a single-use link, make an
agent and a thread, send a message, and watch the run stream over the WebSocket until it
succeeds. Run inside the NixOS VM test (nixos/tests/appliance.nix) through Caddy, and by
tests/system/test_chat_check.py against the real app and Caddy here.

    agentstead-chat-check BASE_URL LOGIN_LINK [CA_FILE]

Prints one JSON line (the run, the reply, the event types seen); exits 1 on any failure."""

import asyncio
import json
import ssl
import sys

import aiohttp

MESSAGE = "hello from the appliance"


async def check(base: str, link: str, cafile: str | None) -> dict:
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    connector = aiohttp.TCPConnector(ssl=context) if context else aiohttp.TCPConnector()
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=base, connector=connector, cookie_jar=jar) as http:
        path = link[link.index("/auth/link/"):]
        resp = await http.get(path, allow_redirects=False)
        if resp.status != 302:
            raise RuntimeError(f"sign-in link: {resp.status} {await resp.text()}")
        resp = await http.get("/api/me")
        if resp.status != 200:
            raise RuntimeError(f"the sign-in link did not sign in: /api/me answered {resp.status}")
        me = await resp.json()
        unsafe = {"Origin": base, "X-CSRF-Token": me["csrf_token"]}
        agent = await (await http.post("/api/agents", json={"name": "Appliance"}, headers=unsafe)).json()
        thread = await (await http.post("/api/threads", json={"agent_id": agent["id"]}, headers=unsafe)).json()
        async with http.ws_connect("/ws", headers={"Origin": base}) as ws:
            await ws.send_json({"op": "subscribe", "topic": f"threads/{thread['id']}", "after": 0})
            events: list[dict] = []
            async with asyncio.timeout(60):
                while (await ws.receive_json())["op"] != "subscribed":
                    pass
                resp = await http.post(f"/api/threads/{thread['id']}/messages", json={"content": MESSAGE},
                                       headers=unsafe)
                if resp.status != 202:
                    raise RuntimeError(f"message: {resp.status} {await resp.text()}")
                run_id = (await resp.json())["id"]
                while not events or events[-1]["type"] not in ("run.succeeded", "run.failed"):
                    message = await ws.receive_json()
                    if message["op"] == "event":
                        events.append(message)
        types = [e["type"] for e in events]
        body = await (await http.get(f"/api/threads/{thread['id']}")).json()
        reply = body["messages"][-1]["content"]
        if types[-1] != "run.succeeded" or "message.delta" not in types or reply != f"echo: {MESSAGE}":
            raise RuntimeError(f"run {run_id}: events {types}, reply {reply!r}")
        return {"run": run_id, "reply": reply, "events": sorted(set(types)), "user": me["user"]["email"]}


def main() -> int:
    base, link = sys.argv[1].rstrip("/"), sys.argv[2]
    try:
        print(json.dumps(asyncio.run(check(base, link, sys.argv[3] if len(sys.argv) > 3 else None))))
    except Exception as exc:  # one line saying what failed, for the VM test's log
        print(f"chat-check failed: {exc!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

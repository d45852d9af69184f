"""Several instances on one host, through the real parts: two `agentstead serve` processes
on one SQLite file, the real nats-server between them, the real Caddy balancing over
them, the LLM over HTTP. A socket on one instance sees a run started through the other;
NATS killed mid-stream loses nothing; an instance killed mid-run leaves its run to the
other's watchdog; a revocation on one instance closes sockets on the other; a cancel
on one stops the run executing on the other."""

from __future__ import annotations

import asyncio
import json
import signal

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..support.caddy import Caddy
from ..support.live import Live
from ..support.llm_server import LLMServer, Turn
from ..support.nats import NatsServer
from ..support.procs import Server, login_link

ORIGIN = "http://localhost:47294"
ANSWER = " ".join(f"token{i}" for i in range(40))
LONG = " ".join(f"word{i}" for i in range(160))   # 8 s at 20 tokens/s


class Cluster:
    def __init__(self, tmp_path, llm: LLMServer):
        self.tmp = tmp_path
        self.nats = NatsServer(tmp_path / "nats")
        key = tmp_path / "llm_key"
        key.write_text("sk-test")
        self.env = {
            "AGENTSTEAD_LLM_PROVIDERS": json.dumps([{"name": "local", "base_url": llm.base_url,
                                                     "models": ["gpt-test"], "api_key_file": str(key)}]),
            "AGENTSTEAD_NATS_URL": self.nats.url, "AGENTSTEAD_INSTANCES": "2",
            "AGENTSTEAD_RUN_LEASE_SECONDS": "3", "AGENTSTEAD_SECRET_KEY": "s" * 48,
        }
        self.a = Server(tmp_path / "state", AGENTSTEAD_INSTANCE="1", **self.env)
        self.b = Server(tmp_path / "state", AGENTSTEAD_INSTANCE="2", **self.env)
        spa = tmp_path / "spa"
        spa.mkdir()
        (spa / "index.html").write_text("<!doctype html><title>spa</title>")
        self.caddy = Caddy(tmp_path / "caddy", upstream=f"127.0.0.1:{self.a.port}", frontend_root=spa,
                           CADDY_MORE_UPSTREAMS=f"127.0.0.1:{self.b.port}")

    def start(self) -> "Cluster":
        self.nats.start()
        self.a.start()
        self.b.start()
        self.caddy.start()
        return self

    def stop(self) -> None:
        for part in (self.caddy, self.a, self.b, self.nats):
            part.stop()


@pytest.fixture
async def llm():
    server = LLMServer(api_key="sk-test", models=("gpt-test",), tokens_per_second=20)
    await server.start()
    server.script = [Turn(ANSWER)] * 10
    yield server
    await server.stop()


@pytest.fixture
def cluster(tmp_path, llm):
    c = Cluster(tmp_path, llm).start()
    yield c
    c.stop()


async def _signed_in(cluster: Cluster, email: str = "ada@example.org",
                     role: str = "member") -> dict[str, aiohttp.ClientSession]:
    """One person's cookie, used against instance A, instance B and Caddy."""
    link = login_link(cluster.a.state_dir, email, role, **cluster.env)
    jar = aiohttp.CookieJar(unsafe=True)
    sessions = {name: aiohttp.ClientSession(base_url=url, cookie_jar=jar) for name, url in
                (("a", cluster.a.url), ("b", cluster.b.url), ("caddy", cluster.caddy.url))}
    resp = await sessions["a"].get(link, allow_redirects=False)
    assert resp.status == 302
    return sessions


async def _unsafe(http: aiohttp.ClientSession) -> dict:
    me = await (await http.get("/api/me")).json()
    return {"Origin": ORIGIN, "X-CSRF-Token": me["csrf_token"]}


async def _thread(http) -> tuple[dict, dict]:
    unsafe = await _unsafe(http)
    agent = await (await http.post("/api/agents", json={"name": "A"}, headers=unsafe)).json()
    thread = await (await http.post("/api/threads", json={"agent_id": agent["id"]}, headers=unsafe)).json()
    return thread, unsafe


async def _subscribe(http, topic: str, after: int = 0) -> Live:
    live = Live(await http.ws_connect("/ws", headers={"Origin": ORIGIN}))
    await live.send({"op": "subscribe", "topic": topic, "after": after})
    await live.until("subscribed")
    return live


async def _until_end(live: Live, seen: list, timeout: float = 30.0) -> list:
    async with asyncio.timeout(timeout):
        while not seen or seen[-1]["type"] not in ("run.succeeded", "run.failed", "run.cancelled",
                                                   "run.interrupted"):
            seen.append(await live.until("event"))
    return seen


async def _streaming_on_b(s: dict) -> tuple[dict, Live, dict, list]:
    """A run on instance B, followed from instance A until three deltas came through:
    (thread, A's socket, the run, the events A saw so far)."""
    thread, unsafe = await _thread(s["b"])
    on_a = await _subscribe(s["a"], f"threads/{thread['id']}")
    run = await (await s["b"].post(f"/api/threads/{thread['id']}/messages", json={"content": "hi"},
                                   headers=unsafe)).json()
    seen = []
    async with asyncio.timeout(30):
        while sum(1 for e in seen if e["type"] == "message.delta") < 3:
            seen.append(await on_a.until("event"))
    return thread, on_a, run, seen


def _gapless(events: list[dict]) -> None:
    """Every event once, in seq order (a thread's topic: run and message events)."""
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)), seqs


async def _status(http, run_id: str, statuses: set[str], timeout: float = 30.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            run = await (await http.get(f"/api/runs/{run_id}")).json()
            if run["status"] in statuses:
                return run
            await asyncio.sleep(0.05)


async def test_a_socket_on_one_instance_sees_a_run_started_through_the_other(cluster):
    s = await _signed_in(cluster)
    try:
        thread, unsafe = await _thread(s["b"])
        on_a = await _subscribe(s["a"], f"threads/{thread['id']}")
        via_caddy = await _subscribe(s["caddy"], f"threads/{thread['id']}")
        resp = await s["b"].post(f"/api/threads/{thread['id']}/messages", json={"content": "hi"}, headers=unsafe)
        assert resp.status == 202
        got_a = await _until_end(on_a, [])
        got_caddy = await _until_end(via_caddy, [])
        assert got_a[-1]["type"] == "run.succeeded"
        _gapless(got_a)
        assert [e["seq"] for e in got_a] == [e["seq"] for e in got_caddy]   # the same stream wherever
        text = "".join(e["data"]["text"] for e in got_a if e["type"] == "message.delta")
        assert text == ANSWER
        ready = await (await s["a"].get("/readyz")).json()
        assert ready["status"] == "ok" and ready["checks"]["bus"]["heard"] > 0
    finally:
        for http in s.values():
            await http.close()


async def _metric(http, name: str) -> float:
    """One unlabelled sample of an instance's /metrics (loopback: allowed)."""
    text = await (await http.get("/metrics")).text()
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


async def _readyz(sessions: list, status: str, timeout: float = 15.0) -> list[dict]:
    async with asyncio.timeout(timeout):
        while True:
            bodies = [await (await http.get("/readyz")).json() for http in sessions]
            if all(b["status"] == status for b in bodies):
                return bodies
            await asyncio.sleep(0.1)


async def test_nats_stopped_while_runs_stream_loses_nothing_and_the_fast_path_returns(cluster, llm):
    """Two runs stream (one on each instance), read on both instances; NATS is stopped for 4 s
    (bench/scale/outage.py does 30 s) and started again while they still stream."""
    llm.script = [Turn(LONG)] * 2
    s = await _signed_in(cluster)
    loop = asyncio.get_running_loop()
    try:
        threads = [(await _thread(s[name]))[0] for name in ("a", "b")]
        unsafe = await _unsafe(s["a"])
        socks = {(t["id"], name): await _subscribe(s[name], f"threads/{t['id']}") for t in threads for name in "ab"}
        seen: dict = {key: [] for key in socks}

        async def read(key) -> None:
            async with asyncio.timeout(60):
                while not seen[key] or seen[key][-1][1]["type"] != "run.succeeded":
                    seen[key].append((loop.time(), await socks[key].until("event", timeout=30)))
        readers = [asyncio.create_task(read(key)) for key in socks]
        for t, name in zip(threads, "ab"):   # each run executes where it was posted
            resp = await s[name].post(f"/api/threads/{t['id']}/messages", json={"content": "hi"}, headers=unsafe)
            assert resp.status == 202, await resp.text()
        async with asyncio.timeout(30):
            while any(sum(e["type"] == "message.delta" for _, e in got) < 3 for got in seen.values()):
                await asyncio.sleep(0.05)
        heard = [await _metric(s[n], "agentstead_bus_events_heard_total") for n in "ab"]
        filled = [await _metric(s[n], "agentstead_bus_events_filled_total") for n in "ab"]
        cluster.nats.stop()
        down = loop.time()
        degraded = await _readyz([s["a"], s["b"]], "degraded")
        assert all(b["degraded"] == ["bus"] for b in degraded)
        await asyncio.sleep(4 - (loop.time() - down))
        up = loop.time()
        # Meanwhile the other instance's deltas came from the log, on both instances.
        for (thread_id, name), got in seen.items():
            assert any(e["type"] == "message.delta" for at, e in got if down < at < up), (thread_id, name)
        assert [await _metric(s[n], "agentstead_bus_events_filled_total") for n in "ab"] > filled
        cluster.nats.start()
        await _readyz([s["a"], s["b"]], "ok")
        back = [await _metric(s[n], "agentstead_bus_events_heard_total") for n in "ab"]
        await asyncio.gather(*readers)
        # The fast path again: what the runs streamed after NATS returned was heard over NATS.
        after = [await _metric(s[n], "agentstead_bus_events_heard_total") for n in "ab"]
        assert after[0] > back[0] >= heard[0] and after[1] > back[1] >= heard[1], (heard, back, after)
        for t in threads:
            # Every event the log still has reached every socket once, in order (a finished run's
            # deltas are compacted from the log: those streamed are a prefix of the reply).
            replay = Live(await s["a"].ws_connect("/ws", headers={"Origin": ORIGIN}))
            await replay.send({"op": "subscribe", "topic": f"threads/{t['id']}", "after": 0})
            logged = await _until_end(replay, [])   # until("event") passes over `subscribed`
            for name in "ab":
                got = [e for _, e in seen[(t["id"], name)]]
                _gapless(got)
                assert {e["seq"] for e in logged} <= {e["seq"] for e in got}
                assert LONG.startswith("".join(e["data"]["text"] for e in got if e["type"] == "message.delta"))
                assert [e["data"]["message"]["content"] for e in got if e["type"] == "message.created"] == [LONG]
    finally:
        for http in s.values():
            await http.close()


async def test_an_instance_killed_mid_run_leaves_the_run_to_the_other(cluster, llm):
    s = await _signed_in(cluster)
    try:
        thread, on_a, run, seen = await _streaming_on_b(s)
        cluster.b.proc.send_signal(signal.SIGKILL)
        assert cluster.b.wait(10) == -signal.SIGKILL
        # Instance A's watchdog settles it within the lease (3 s) and a third of it.
        await _until_end(on_a, seen, timeout=15)
        assert seen[-1]["type"] == "run.interrupted"
        # Resumed through Caddy (only A is left): it finishes there.
        resp = await s["caddy"].post(f"/api/runs/{run['id']}/resume", headers=await _unsafe(s["caddy"]))
        assert resp.status == 202, await resp.text()
        seen.append(await on_a.until("event"))
        await _until_end(on_a, seen)
        assert seen[-1]["type"] == "run.succeeded"
        _gapless(seen)
        body = await (await s["caddy"].get(f"/api/threads/{thread['id']}")).json()
        assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
        assert body["messages"][-1]["content"] == ANSWER
    finally:
        for http in s.values():
            await http.close()


async def test_an_instance_stopped_gracefully_hands_its_run_to_the_other(cluster):
    """SIGTERM: instance B's run ends `interrupted` with the code handed_over and A resumes it
    at once, with no request (a run of an instance killed with -9 waits for its lease and for
    a resume: the test above)."""
    s = await _signed_in(cluster)
    try:
        thread, on_a, run, seen = await _streaming_on_b(s)
        await asyncio.to_thread(cluster.b.stop)   # SIGTERM, and B exits
        assert cluster.b.proc.returncode == 0
        await _until_end(on_a, seen)
        assert seen[-1]["type"] == "run.interrupted"
        seen.append(await on_a.until("event"))   # no resume request: A takes it over by itself
        await _until_end(on_a, seen)
        interrupted = [e for e in seen if e["type"] == "run.interrupted"]
        assert len(interrupted) == 1 and seen[-1]["type"] == "run.succeeded", [e["type"] for e in seen]
        started = [i for i, e in enumerate(seen) if e["type"] == "run.started"]
        assert len(started) == 2 and started[1] > seen.index(interrupted[0])   # started again, on A
        _gapless(seen)
        done = await (await s["a"].get(f"/api/runs/{run['id']}")).json()
        assert done["status"] == "succeeded" and done.get("error") is None, done
        body = await (await s["a"].get(f"/api/threads/{thread['id']}")).json()
        assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
        assert body["messages"][-1]["content"] == ANSWER
    finally:
        for http in s.values():
            await http.close()


async def test_a_revocation_a_demotion_and_a_cancel_on_one_instance_reach_the_other(cluster):
    """How soon (the issue's 100 ms) is measured by bench/scale/crossing.py; here: that it happens."""
    s = await _signed_in(cluster, role="admin")
    bob = await _signed_in(cluster, "bob@example.org", role="admin")
    try:
        thread, unsafe = await _thread(s["b"])
        run = await (await s["b"].post(f"/api/threads/{thread['id']}/messages", json={"content": "hi"},
                                       headers=unsafe)).json()
        on_a = await _subscribe(s["a"], f"threads/{thread['id']}")
        await _status(s["a"], run["id"], {"running"})
        # Cancelled through A while B executes it: B's task stops, the row says cancelled.
        resp = await s["a"].post(f"/api/runs/{run['id']}/cancel", headers=await _unsafe(s["a"]))
        assert resp.status == 200, await resp.text()
        seen = await _until_end(on_a, [])
        assert seen[-1]["type"] == "run.cancelled"
        await asyncio.sleep(1.0)   # B's task would have streamed on (20 tokens/s): it stopped
        assert (await (await s["a"].get(f"/api/runs/{run['id']}")).json())["status"] == "cancelled"
        after = await _subscribe(s["b"], f"threads/{thread['id']}", after=seen[-1]["seq"])
        with pytest.raises(TimeoutError):
            await after.until("event", timeout=0.5)
        # A ticket issued by one instance opens a socket on the other.
        ticket = (await (await s["a"].post("/auth/ws-ticket", headers=await _unsafe(s["a"]))).json())["ticket"]
        async with aiohttp.ClientSession() as bare:
            ws = await bare.ws_connect(f"{cluster.b.url}/ws?ticket={ticket}")
            sock = Live(ws)
            await sock.send({"op": "subscribe", "topic": f"threads/{thread['id']}", "after": 0})
            await sock.until("subscribed")
            # An API token revoked through A: the socket on B it opened closes (4001).
            token = await (await s["a"].post("/api/tokens", json={"name": "t"},
                                             headers=await _unsafe(s["a"]))).json()
            by_token = Live(await bare.ws_connect(f"{cluster.b.url}/ws",
                                                  headers={"Authorization": f"Bearer {token['token']}"}))
            await by_token.send({"op": "subscribe", "topic": f"threads/{thread['id']}"})
            await by_token.until("subscribed")
            resp = await s["a"].delete(f"/api/tokens/{token['id']}", headers=await _unsafe(s["a"]))
            assert resp.status == 204, await resp.text()
            assert await by_token.closed(timeout=5) == 4001
            # An administrator demoted through A: their socket on B reading users/* closes (4003).
            bob_token = await (await bob["a"].post("/api/tokens", json={"name": "b", "scopes": ["admin"]},
                                                   headers=await _unsafe(bob["a"]))).json()
            admin_sock = Live(await bare.ws_connect(f"{cluster.b.url}/ws",
                                                    headers={"Authorization": f"Bearer {bob_token['token']}"}))
            await admin_sock.send({"op": "subscribe", "topic": "users/*"})
            await admin_sock.until("subscribed")
            bob_id = (await (await bob["a"].get("/api/me")).json())["user"]["id"]
            resp = await s["a"].patch(f"/api/admin/users/{bob_id}", json={"role": "member"},
                                      headers=await _unsafe(s["a"]))
            assert resp.status == 200, await resp.text()
            assert await admin_sock.closed(timeout=5) == 4003
            # Signed out everywhere through A: the socket on B (opened with A's ticket) closes (4001).
            resp = await s["a"].post("/auth/logout-all", headers=await _unsafe(s["a"]))
            assert resp.status == 200
            assert await sock.closed(timeout=5) == 4001
    finally:
        for http in (*s.values(), *bob.values()):
            await http.close()


async def test_concurrent_writes_on_both_instances_never_answer_database_locked(cluster):
    """Two writer processes on one file meet at BEGIN IMMEDIATE: the busy timeout makes the
    later wait (agentstead_db_lock_wait_seconds), never fail. bench/scale/writers.py measures it."""
    s = await _signed_in(cluster, role="admin")
    try:
        token = await (await s["a"].post("/api/tokens", json={"name": "w", "scopes": ["admin"]},
                                         headers=await _unsafe(s["a"]))).json()
        bearer = {"Authorization": f"Bearer {token['token']}"}
        before = [await _metric(s[n], "agentstead_db_lock_wait_seconds_count") for n in "ab"]

        async def writes(url: str, n: int) -> list[tuple[int, str]]:
            gate = asyncio.Semaphore(16)
            async with aiohttp.ClientSession(base_url=url, headers=bearer) as http:
                async def one(i: int) -> tuple[int, str]:
                    async with gate:
                        resp = await http.post("/api/agents", json={"name": f"w{i}"})
                        if resp.status == 201 and i % 2:
                            agent = await resp.json()
                            resp = await http.post("/api/threads", json={"agent_id": agent["id"]})
                        return resp.status, await resp.text()
                return await asyncio.gather(*(one(i) for i in range(n)))
        answers = [a for got in await asyncio.gather(writes(cluster.a.url, 150), writes(cluster.b.url, 150))
                   for a in got]
        assert [a for a in answers if a[0] != 201] == []
        for n, old in zip("ab", before):
            assert await _metric(s[n], "agentstead_db_lock_wait_seconds_count") >= old + 1
            text = await (await s[n].get("/metrics")).text()
            failed = [x.value for f in text_string_to_metric_families(text) for x in f.samples
                      if x.name == "agentstead_db_writes_total" and x.labels.get("outcome") == "failed"]
            assert failed == [0.0]
        listed = await (await s["caddy"].get("/api/agents", params={"limit": "200"}, headers=bearer)).json()
        assert len(listed["agents"]) == 200   # 300 written: every acknowledged write is there to read
    finally:
        for http in s.values():
            await http.close()

"""The caller's agents as tools (Agentstead as an MCP server, http/mcp.py; docs/mcp.md).

A call is a message on a thread (a new one unless a thread id is given) and a run
like any other: runner.submit, the owner's limits and budget, usage, events. The
call waits for the run to end and answers with its reply.
"""

from __future__ import annotations

import asyncio
import dataclasses

from ..auth.access import Principal
from ..bus.bus import Bus
from ..bus.follow import follow
from ..errors import Refused, invalid
from ..store import threads as thread_store
from ..store.agents import Agent
from ..store.db import Database
from ..store.runs import Run
from .agents import AgentService
from .runs import RunService
from .threads import ThreadService

PREFIX = "agent_"
MAX_MESSAGE = 100_000     # as POST /api/threads/{id}/messages


def tool_name(agent: Agent) -> str:
    """An agent's tool name: its id without dashes (MCP names allow [A-Za-z0-9_-])."""
    return PREFIX + agent.id.replace("-", "")


@dataclasses.dataclass(frozen=True)
class Answer:
    thread_id: str
    run: Run
    reply: str


class AgentTools:
    def __init__(self, db: Database, bus: Bus, agents: AgentService, threads: ThreadService, runs: RunService,
                 timeout: float):
        self.db, self.bus, self.agents, self.threads, self.runs = db, bus, agents, threads, runs
        self.timeout = timeout

    async def list(self, p: Principal) -> list[Agent]:
        """The agents the caller may use (their own, newest first, at most 200)."""
        return await self.agents.list(p, limit=200, before=None)

    async def find(self, p: Principal, name: str) -> Agent:
        for agent in await self.list(p):
            if tool_name(agent) == name:
                return agent
        raise Refused(404, "not_found", f"no agent tool named {name!r}")

    async def ask(self, p: Principal, name: str, arguments: dict) -> Answer:
        """Send the message to the agent and wait for its reply (raises Refused, never hangs
        past the run's time limit)."""
        if not p.has("write"):
            raise Refused(403, "forbidden", "calling an agent needs a token with the write scope")
        message, thread_id = arguments.get("message"), arguments.get("thread_id")
        if not isinstance(message, str) or not message.strip() or len(message) > MAX_MESSAGE:
            raise invalid("/message", f"message must be a non-empty string of at most {MAX_MESSAGE} characters")
        if thread_id is not None and not isinstance(thread_id, str):
            raise invalid("/thread_id", "thread_id must be a string")
        agent = await self.find(p, name)
        if thread_id:
            thread = await self.threads.get(p, thread_id)
            if thread.agent_id != agent.id:
                raise invalid("/thread_id", "that thread belongs to another agent")
        else:
            thread = await self.threads.create(p, agent.id, message.strip().splitlines()[0][:80])
        run = await self.threads.post(p, thread.id, message)
        run = await self._ended(p, run.id)
        return Answer(thread.id, run, await self._reply(run))

    async def _ended(self, p: Principal, run_id: str) -> Run:
        # The run's own topic from its start (bus/follow.py): done the moment its end (or its
        # question) is announced, in the transaction that wrote the row read after it.
        async with asyncio.timeout(self.timeout + 30):
            async for _ in follow(self.bus, f"runs/{run_id}", 0, idle=5.0):
                pass
        return await self.runs.get(p, run_id)

    async def _reply(self, run: Run) -> str:
        if run.status == "waiting_for_input":
            return (f"The agent asks: {run.waiting_prompt}\n(the run {run.id} waits for the answer in "
                    "Agentstead: POST /api/runs/{id}/resume, or the chat page)")
        if run.status != "succeeded":
            raise Refused(502, run.error_code or "run_failed",
                          f"the run {run.status}: {run.error_message or 'no reply'}")
        newest = await self.db.read(thread_store.newest, run.thread_id, limit=20)
        return next((m.content for m in newest if m.run_id == run.id and m.role == "assistant"
                     and not m.partial), "")

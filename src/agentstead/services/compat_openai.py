"""The OpenAI-compatible endpoint's rules (http/compat_openai.py): which agent a `model`
names, and which thread a conversation goes on in.

A client of /v1/chat/completions sends the whole conversation every time. Its key is
the sha256 of the agent's id and the messages (role and text). Each request is
remembered under its key with the thread and the run that answered it, in the run's
queueing transaction. The next request repeats it, adds the reply and one more user
message: when the messages before the reply have a key we know, the reply ends with
that run's last reply (or its question), and that run is still the thread's newest,
the conversation goes on in that thread (a run waiting on ask_human is resumed with the
new message as the answer). Anything else (a new conversation, an edited one, a fork)
starts a new thread holding the earlier messages as its history. System and developer
messages count toward the key but are not given to the model: the agent's own
instructions are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3

from ..auth.access import Principal
from ..bus.bus import Bus
from ..errors import Refused
from ..runner.runner import Runner
from ..store import agents as agent_store
from ..store import compat as compat_store
from ..store import runs as run_store
from ..store import threads as thread_store
from ..store.agents import Agent
from ..store.runs import Run
from .threads import DEFAULT_TITLE, created, title_from, turn
from .turn_choice import Choice

Messages = list[tuple[str, str]]   # (role, text), the last one the user's


def digest(agent_id: str, messages: Messages) -> str:
    return hashlib.sha256(json.dumps([agent_id, messages], separators=(",", ":")).encode()).hexdigest()


def last_reply(conn: sqlite3.Connection, run: Run) -> str:
    """What a run said last: its question when it waits, else its newest reply with text."""
    if run.status == "waiting_for_input":
        return run.waiting_prompt or ""
    upto = thread_store.seq_of(conn, run.input_message_id) if run.input_message_id else None
    own = thread_store.run_messages_after(conn, run.thread_id, upto, run.id) if upto is not None else []
    texts = [m.content for m in own if m.role == "assistant" and m.content.strip()]
    return texts[-1] if texts else ""


def _continuing(conn: sqlite3.Connection, owner_id: str, agent_id: str, messages: Messages) -> Run | None:
    """The run whose answer this conversation continues, when it still may be continued."""
    if len(messages) < 3 or messages[-2][0] != "assistant":
        return None
    known = compat_store.conversation(conn, owner_id, digest(agent_id, messages[:-2]))
    if known is None or thread_store.get_owned(conn, known[0], owner_id) is None:
        return None
    latest = run_store.latest_of_thread(conn, known[0])
    if latest is None or latest.id != known[1] or latest.status not in ("succeeded", "waiting_for_input"):
        return None
    return latest if messages[-2][1].strip().endswith(last_reply(conn, latest).strip()) else None


def _turn(conn: sqlite3.Connection, owner_id: str, agent: Agent, messages: Messages, key: str, news: list,
          providers: dict) -> Run:
    """The user's message and its run: in the thread the conversation continues, or in a new
    thread that holds the earlier messages, titled as /api titles a thread (its first user
    message); `news` gets the thread.created. The agent `model` names answers (a thread switched to
    another agent since is answered by this one for this turn); the thread's model "from now on"
    applies when the thread's agent is this one (services/turn_choice.py)."""
    going_on = _continuing(conn, owner_id, agent.id, messages)
    if going_on is not None:
        thread_id = going_on.thread_id
    else:
        first = next((text for role, text in messages if role == "user"), "")
        thread = thread_store.create(conn, owner_id, agent.id, title_from(first) or DEFAULT_TITLE)
        news.extend(created(thread))
        thread_id = thread.id
        for role, text in messages[:-1]:
            if role in ("user", "assistant"):
                thread_store.add_message(conn, thread_id, role, text)
    run = turn(conn, owner_id, thread_id, messages[-1][1], news, Choice(agent.id), providers)
    compat_store.remember(conn, owner_id, key, thread_id, run.id)
    return run


@dataclasses.dataclass(frozen=True)
class Started:
    run: Run
    after: int   # the log's head before the run was submitted or resumed: follow runs/{id} from here


class OpenAIService:
    def __init__(self, bus: Bus, runner: Runner):
        self.db, self.bus, self.runner = bus.db, bus, runner

    async def models(self, p: Principal) -> list[Agent]:
        return await self.db.read(agent_store.list_owned, p.user_id, limit=500, before=None)

    async def agent(self, p: Principal, model: str) -> Agent:
        """The agent a `model` names: its id, else its name (unique among the caller's agents)."""
        agent = await self.db.read(agent_store.get_owned, model, p.user_id)
        if agent is not None:
            return agent
        named = await self.db.read(compat_store.agents_named, p.user_id, model)
        if not named:
            raise Refused(404, "model_not_found", f"the model {model!r} does not exist: name one of your agents "
                          "(GET /v1/models)", details={"param": "model"})
        if len(named) > 1:
            raise Refused(400, "model_ambiguous", f"several of your agents are named {model!r}: use the id of one "
                          f"({', '.join(a.id for a in named)})", details={"param": "model"})
        return named[0]

    async def start(self, p: Principal, model: str, messages: Messages) -> Started:
        """The run that answers the conversation's last message (a new one, or a waiting run resumed)."""
        agent = await self.agent(p, model)
        after = await self.bus.head()
        key = digest(agent.id, messages)
        waiting = await self.db.read(_continuing, p.user_id, agent.id, messages)
        if waiting is not None and waiting.status == "waiting_for_input":
            run = await self.runner.resume(waiting, messages[-1][1])
            await self.db.write(compat_store.remember, p.user_id, key, run.thread_id, run.id)
            return Started(run, after)
        news: list = []
        providers = self.runner.tools.providers
        run = await self.runner.submit(p.user_id, lambda conn: _turn(conn, p.user_id, agent, messages, key, news,
                                                                     providers), before=lambda run: news)
        return Started(run, after)

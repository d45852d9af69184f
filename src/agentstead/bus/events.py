"""Typed events. Each has a name (its `type` on the wire), a docstring, and a payload.

Every type here is described in contracts/asyncapi.yaml; a test fails when one is not.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

REGISTRY: dict[str, type["Event"]] = {}


@dataclasses.dataclass(frozen=True)
class Event:
    type: ClassVar[str] = ""

    def data(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def event(name: str):
    """Register an event class under its wire name."""
    def register(cls: type[Event]) -> type[Event]:
        assert name not in REGISTRY, name
        cls.type = name
        REGISTRY[name] = cls
        return dataclasses.dataclass(frozen=True)(cls)
    return register


# ---- users/{id}: things that happened to your account ---------------------

@event("token.created")
class TokenCreated(Event):
    """An API token of yours was created (its value is never in an event)."""
    token_id: str
    name: str
    scopes: list[str]


@event("token.revoked")
class TokenRevoked(Event):
    """An API token of yours was revoked."""
    token_id: str


@event("session.revoked")
class SessionRevoked(Event):
    """One or more of your sessions ended (logout, logout everywhere, reuse detected, disabled)."""
    session_ids: list[str]
    reason: str


@event("account.updated")
class AccountUpdated(Event):
    """An administrator changed your role or disabled your account."""
    role: str
    disabled: bool


# ---- system: for administrators -----------------------------------------

@event("system.user_created")
class UserCreated(Event):
    """A user was created (by an administrator, the CLI, or sign-up)."""
    user_id: str
    email: str
    role: str


@event("system.readiness")
class Readiness(Event):
    """The result of a readiness check changed (ok <-> failing)."""
    status: str
    failing: list[str]


# ---- runs/{id} and threads/{id}: a run's life -------------------------------

@event("run.queued")
class RunQueued(Event):
    """A run was accepted and waits for a slot."""
    run_id: str
    thread_id: str
    agent_id: str


@event("run.started")
class RunStarted(Event):
    """The runner started (or resumed) the run."""
    run_id: str
    thread_id: str
    resumed: bool


@event("message.delta")
class MessageDelta(Event):
    """Streamed text of the assistant's reply, as the model produces it."""
    run_id: str
    thread_id: str
    text: str


@event("message.created")
class MessageCreated(Event):
    """A message was stored in the thread (complete; replaces the deltas before it)."""
    run_id: str
    thread_id: str
    message: dict


@event("messages.removed")
class MessagesRemoved(Event):
    """The thread's messages from seq `from_seq` on were removed (a regenerate or an edit
    truncates the thread); run `run_id`, queued in the same transaction, answers anew."""
    run_id: str
    thread_id: str
    from_seq: int


@event("tool.call")
class ToolCalled(Event):
    """The agent called a tool."""
    run_id: str
    thread_id: str
    call_id: str
    name: str
    arguments: dict


@event("tool.result")
class ToolResult(Event):
    """A tool returned (ok false: it failed and the model was told why)."""
    run_id: str
    thread_id: str
    call_id: str
    name: str
    ok: bool
    output: str


@event("run.waiting")
class RunWaiting(Event):
    """The agent asked the user a question (ask_human); answer with POST /api/runs/{id}/resume."""
    run_id: str
    thread_id: str
    question: str


@event("run.succeeded")
class RunSucceeded(Event):
    """The run finished."""
    run_id: str
    thread_id: str
    prompt_tokens: int
    completion_tokens: int


@event("run.failed")
class RunFailed(Event):
    """The run failed; `code` says why (provider_auth_failed, model_not_found, run_timeout, …)."""
    run_id: str
    thread_id: str
    code: str
    message: str


@event("run.cancelled")
class RunCancelled(Event):
    """The run was cancelled; partial output is kept and marked partial."""
    run_id: str
    thread_id: str


@event("run.interrupted")
class RunInterrupted(Event):
    """The server stopped while the run was running; resume it with POST /api/runs/{id}/resume."""
    run_id: str
    thread_id: str


# ---- threads/{id} and the owner's users/{id}: the thread itself --------------

@event("thread.created")
class ThreadCreated(Event):
    """A thread was created (on the owner's users/{id} only)."""
    thread_id: str
    agent_id: str
    title: str
    created_at: str


@event("thread.renamed")
class ThreadRenamed(Event):
    """The thread got a new title."""
    thread_id: str
    title: str


@event("thread.updated")
class ThreadUpdated(Event):
    """Who answers the thread's turns from now on changed (PATCH /api/threads/{id}): its agent,
    and its model (null: the agent's own)."""
    thread_id: str
    agent_id: str
    model: str | None


@event("thread.deleted")
class ThreadDeleted(Event):
    """The thread was deleted with its messages and runs; nothing more comes on its topic."""
    thread_id: str


# ---- runs/{id} of workflow runs: each step's life ---------------------------

@event("step.started")
class StepStarted(Event):
    """A workflow step started (an agent or tool step's attempt, or a parallel group); `input` is
    what it was given (rendered input, tool arguments; cut at 16 KiB of text), null for a group."""
    run_id: str
    step: str
    kind: str
    attempt: int
    started_at: str
    input: Any = None


@event("step.succeeded")
class StepSucceeded(Event):
    """A workflow step finished; `output` is what later steps see (cut at 16 KiB when `output_truncated`)."""
    run_id: str
    step: str
    kind: str
    attempt: int
    started_at: str
    finished_at: str
    duration_ms: float
    output: Any
    output_truncated: bool


@event("step.retrying")
class StepRetrying(Event):
    """An attempt of a workflow step failed; the next starts after `retry_in_seconds`. The failed
    attempt's `started_at`, `finished_at` and `duration_ms` (added for the page's attempt list)."""
    run_id: str
    step: str
    kind: str
    attempt: int
    error: str
    retry_in_seconds: float
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: float | None = None


@event("step.failed")
class StepFailed(Event):
    """A workflow step failed on its last attempt; the run fails with code step_failed."""
    run_id: str
    step: str
    kind: str
    attempt: int
    started_at: str
    finished_at: str
    duration_ms: float
    error: str


@event("step.waiting")
class StepWaiting(Event):
    """An approval step waits for a person: POST /api/runs/{id}/resume with {"answer": {"approved", "comment"}}."""
    run_id: str
    step: str
    prompt: str

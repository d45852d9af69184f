"""A workflow definition as dataclasses.

`Definition.from_dict` expects a document the JSON Schema accepted
(`validate.schema_problems` returns nothing); it does no checking of its own,
so the one place that explains what is wrong stays `validate.py`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Union

# A step name, or None where the workflow ends (no `next`, no `on_reject`).
Target = Union[str, None]


@dataclasses.dataclass(frozen=True)
class Retry:
    max_attempts: int = 1
    backoff_seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class InputSpec:
    type: str  # "string" | "number" | "boolean"
    required: bool = True


@dataclasses.dataclass(frozen=True, kw_only=True)
class AgentStep:
    name: str
    agent_id: str
    input: str  # a template
    next: Target = None
    timeout_seconds: float | None = None
    retry: Retry = Retry()
    kind = "agent"

    def targets(self) -> list[tuple[str, str]]:
        return [("/next", self.next)] if self.next else []


@dataclasses.dataclass(frozen=True, kw_only=True)
class ToolStep:
    name: str
    tool: str
    arguments: Mapping[str, Any]  # string values at any depth are templates
    next: Target = None
    timeout_seconds: float | None = None
    retry: Retry = Retry()
    kind = "tool"

    def targets(self) -> list[tuple[str, str]]:
        return [("/next", self.next)] if self.next else []


@dataclasses.dataclass(frozen=True)
class Case:
    when: str  # an expression (expressions.py)
    next: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class BranchStep:
    name: str
    cases: tuple[Case, ...]
    default: str
    kind = "branch"

    def targets(self) -> list[tuple[str, str]]:
        return [(f"/cases/{i}/next", c.next) for i, c in enumerate(self.cases)] + [("/default", self.default)]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParallelStep:
    name: str
    steps: tuple[str, ...]  # members: agent or tool steps without `next`
    next: Target = None
    kind = "parallel"

    def targets(self) -> list[tuple[str, str]]:
        return [(f"/steps/{i}", m) for i, m in enumerate(self.steps)] + ([("/next", self.next)] if self.next else [])


@dataclasses.dataclass(frozen=True, kw_only=True)
class ApprovalStep:
    name: str
    prompt: str  # a template
    on_approve: str
    on_reject: Target = None
    # How long a wait may last: the runner fails the run after it (the compiled graph only pauses).
    timeout_seconds: float | None = None
    kind = "approval"

    def targets(self) -> list[tuple[str, str]]:
        return [("/on_approve", self.on_approve)] + ([("/on_reject", self.on_reject)] if self.on_reject else [])


Step = Union[AgentStep, ToolStep, BranchStep, ParallelStep, ApprovalStep]
# Steps that do work through `execute_step` (and so have a timeout and retries).
WORK_KINDS = ("agent", "tool")


@dataclasses.dataclass(frozen=True)
class Definition:
    name: str
    start: str
    steps: Mapping[str, Step]
    inputs: Mapping[str, InputSpec] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "Definition":
        inputs = {k: InputSpec(v["type"], v.get("required", True)) for k, v in (doc.get("inputs") or {}).items()}
        steps = {name: _step(name, raw) for name, raw in doc["steps"].items()}
        return cls(name=doc["name"], start=doc["start"], steps=steps, inputs=inputs)


def _retry(raw: Mapping[str, Any] | None) -> Retry:
    if not raw:
        return Retry()
    return Retry(raw["max_attempts"], raw.get("backoff_seconds", 0.0))


def _step(name: str, raw: Mapping[str, Any]) -> Step:
    kind = raw["kind"]
    if kind == "agent":
        return AgentStep(name=name, agent_id=raw["agent_id"], input=raw["input"], next=raw.get("next"),
                         timeout_seconds=raw.get("timeout_seconds"), retry=_retry(raw.get("retry")))
    if kind == "tool":
        return ToolStep(name=name, tool=raw["tool"], arguments=raw["arguments"], next=raw.get("next"),
                        timeout_seconds=raw.get("timeout_seconds"), retry=_retry(raw.get("retry")))
    if kind == "branch":
        return BranchStep(name=name, cases=tuple(Case(c["when"], c["next"]) for c in raw["cases"]),
                          default=raw["default"])
    if kind == "parallel":
        return ParallelStep(name=name, steps=tuple(raw["steps"]), next=raw.get("next"))
    if kind == "approval":
        return ApprovalStep(name=name, prompt=raw["prompt"], on_approve=raw["on_approve"],
                            on_reject=raw.get("on_reject"), timeout_seconds=raw.get("timeout_seconds"))
    raise ValueError(f"unknown step kind {kind!r}")  # the schema makes this unreachable

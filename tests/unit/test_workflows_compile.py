"""Compiled workflows run on LangGraph: parallel join, approval interrupts, branches, retries."""

import asyncio

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from agentstead.workflows.compile import StepFailed, WorkflowError, compile_workflow, initial_state
from agentstead.workflows.definition import Definition
from agentstead.workflows.validate import validate

ARTICLE = {
    "name": "Article",
    "inputs": {"topic": {"type": "string"}, "limit": {"type": "number"}},
    "start": "gather",
    "steps": {
        "gather": {"kind": "parallel", "steps": ["research", "facts"], "next": "draft"},
        "research": {"kind": "agent", "agent_id": "researcher", "input": "Research {{ input.topic }}"},
        "facts": {"kind": "tool", "tool": "calculator", "arguments": {"expression": "{{ input.limit }}"}},
        "draft": {"kind": "agent", "agent_id": "writer", "next": "gate",
                  "input": "Write from {{ steps.research.output }} and {{ steps.gather.output.facts }}"},
        "gate": {"kind": "approval", "prompt": "Publish this? {{ steps.draft.output }}", "on_approve": "publish"},
        "publish": {"kind": "tool", "tool": "calculator",
                    "arguments": {"expression": "{{ steps.draft.output }}", "note": "{{ steps.gate.output.comment }}"}},
    },
}


class Fake:
    """A fake execute_step: records every call, answers from a table of functions."""

    def __init__(self, **behaviour):
        self.calls: list[tuple[str, object]] = []
        self.behaviour = behaviour

    def count(self, name):
        return sum(1 for n, _ in self.calls if n == name)

    async def __call__(self, name, step, rendered):
        self.calls.append((name, rendered))
        if name in self.behaviour:
            return await self.behaviour[name](rendered)
        return f"{name} done"


def build(doc, fake, **kwargs):
    assert validate(doc, agents={"researcher", "writer"}, tools={"calculator"}) == []
    return compile_workflow(Definition.from_dict(doc), fake, checkpointer=InMemorySaver(), **kwargs)


def config(thread="t1"):
    return {"configurable": {"thread_id": thread}}


async def test_parallel_pair_and_approval_run_to_completion_without_rerunning_steps():
    both_started = asyncio.Event()
    started = set()

    async def member(rendered):
        # Each member waits for the other to start: this only finishes if they run concurrently.
        started.add(type(rendered).__name__)
        if len(started) == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), 2)
        return "notes" if isinstance(rendered, str) else 42

    fake = Fake(research=member, facts=member)
    graph = build(ARTICLE, fake)

    first = await graph.ainvoke(initial_state({"topic": "owls", "limit": 40}), config())
    (pending,) = first["__interrupt__"]
    assert pending.value == {"kind": "approval", "step": "gate", "prompt": "Publish this? draft done"}
    assert [n for n, _ in fake.calls] in (["research", "facts", "draft"], ["facts", "research", "draft"])
    assert dict(fake.calls)["research"] == "Research owls"
    assert dict(fake.calls)["facts"] == {"expression": 40}  # a lone reference keeps its type
    assert dict(fake.calls)["draft"] == "Write from notes and 42"
    assert (await graph.aget_state(config())).next == ("gate",)

    done = await graph.ainvoke(Command(resume={"approved": True, "comment": "ship it"}), config())
    assert "__interrupt__" not in done
    assert done["outputs"]["gate"] == {"approved": True, "comment": "ship it"}
    assert done["outputs"]["gather"] == {"research": "notes", "facts": 42}
    assert done["outputs"]["publish"] == "publish done"
    assert dict(fake.calls)["publish"] == {"expression": "draft done", "note": "ship it"}
    # Across the interrupt nothing that had finished ran again.
    assert {n: fake.count(n) for n in ARTICLE["steps"]} == {
        "gather": 0, "research": 1, "facts": 1, "draft": 1, "gate": 0, "publish": 1}
    assert done["attempts"] == {"research": 1, "facts": 1, "draft": 1, "publish": 1}


async def test_rejection_without_on_reject_ends_the_workflow_and_with_it_goes_there():
    fake = Fake()
    graph = build(ARTICLE, fake)
    await graph.ainvoke(initial_state({"topic": "owls", "limit": 1}), config())
    done = await graph.ainvoke(Command(resume={"approved": False}), config())
    assert done["outputs"]["gate"] == {"approved": False, "comment": ""}
    assert fake.count("publish") == 0 and "publish" not in done["outputs"]

    doc = {**ARTICLE, "steps": {**ARTICLE["steps"],
                                "gate": {**ARTICLE["steps"]["gate"], "on_reject": "revise"},
                                "revise": {"kind": "agent", "agent_id": "writer",
                                           "input": "Fix: {{ steps.gate.output.comment }}"}}}
    fake = Fake()
    graph = build(doc, fake)
    await graph.ainvoke(initial_state({"topic": "owls", "limit": 1}), config("t2"))
    done = await graph.ainvoke(Command(resume={"approved": False, "comment": "too long"}), config("t2"))
    assert dict(fake.calls)["revise"] == "Fix: too long"
    assert fake.count("publish") == 0


async def test_a_malformed_approval_answer_is_refused():
    graph = build(ARTICLE, Fake())
    await graph.ainvoke(initial_state({"topic": "owls", "limit": 1}), config())
    with pytest.raises(WorkflowError, match="step 'gate': the approval answer must be"):
        await graph.ainvoke(Command(resume={"approved": "yes"}), config())


RETRYING = {
    "name": "Retrying",
    "inputs": {"topic": {"type": "string"}},
    "start": "fetch",
    "steps": {
        "fetch": {"kind": "tool", "tool": "calculator", "arguments": {"expression": "{{ input.topic }}"},
                  "retry": {"max_attempts": 3, "backoff_seconds": 0.5}, "next": "after"},
        "after": {"kind": "agent", "agent_id": "writer", "input": "{{ steps.fetch.output }}"},
    },
}


async def test_a_failing_step_retries_with_backoff_then_fails_naming_the_step():
    async def broken(rendered):
        raise ConnectionError("no route")

    slept = []

    async def sleep(seconds):
        slept.append(seconds)

    fake = Fake(fetch=broken)
    graph = build(RETRYING, fake, sleep=sleep)
    with pytest.raises(StepFailed, match=r"step 'fetch': failed after 3 attempts \(ConnectionError: no route\)") as info:
        await graph.ainvoke(initial_state({"topic": "x"}), config())
    assert info.value.step == "fetch" and info.value.attempts == 3
    assert fake.count("fetch") == 3 and fake.count("after") == 0
    assert slept == [0.5, 1.0]


async def test_a_flaky_step_succeeds_on_a_later_attempt_and_timeouts_count_as_failures():
    attempts = []

    async def flaky(rendered):
        attempts.append(1)
        if len(attempts) == 1:
            await asyncio.sleep(1)  # longer than the step's timeout
        return "fine"

    doc = {**RETRYING, "steps": {**RETRYING["steps"],
                                 "fetch": {**RETRYING["steps"]["fetch"], "timeout_seconds": 0.05,
                                           "retry": {"max_attempts": 2}}}}
    graph = build(doc, Fake(fetch=flaky))
    done = await graph.ainvoke(initial_state({"topic": "x"}), config())
    assert done["outputs"] == {"fetch": "fine", "after": "after done"}
    assert done["attempts"]["fetch"] == 2

    async def slow(rendered):
        await asyncio.sleep(1)

    doc["steps"]["fetch"]["retry"] = {"max_attempts": 1}
    with pytest.raises(StepFailed, match=r"step 'fetch': failed after 1 attempt \(timed out\)"):
        await build(doc, Fake(fetch=slow)).ainvoke(initial_state({"topic": "x"}), config())


BRANCHING = {
    "name": "Triage",
    "inputs": {"severity": {"type": "number"}, "team": {"type": "string", "required": False}},
    "start": "classify",
    "steps": {
        "classify": {"kind": "agent", "agent_id": "researcher", "input": "Classify", "next": "route"},
        "route": {"kind": "branch", "default": "log",
                  "cases": [{"when": 'input.severity >= 3 and steps.classify.output in ["outage", "breach"]',
                             "next": "page"},
                            {"when": 'input.team == "ops"', "next": "ticket"}]},
        "page": {"kind": "agent", "agent_id": "writer", "input": "Page about {{ steps.classify.output }}"},
        "ticket": {"kind": "agent", "agent_id": "writer", "input": "Ticket"},
        "log": {"kind": "agent", "agent_id": "writer", "input": "Log"},
    },
}


@pytest.mark.parametrize("run_input,label,taken", [
    ({"severity": 4}, "outage", "page"),
    ({"severity": 4, "team": "ops"}, "typo", "ticket"),
    ({"severity": 1}, "outage", "log"),
])
async def test_branches_follow_the_first_true_case(run_input, label, taken):
    async def classify(rendered):
        return label

    fake = Fake(classify=classify)
    done = await build(BRANCHING, fake).ainvoke(initial_state(run_input), config())
    assert done["outputs"]["route"] == taken
    assert [n for n, _ in fake.calls] == ["classify", taken]


async def test_a_condition_that_cannot_be_evaluated_fails_the_branch():
    async def classify(rendered):
        return "outage"

    doc = {**BRANCHING, "steps": {**BRANCHING["steps"], "route": {
        "kind": "branch", "default": "log", "cases": [{"when": "input.team > 3", "next": "page"},
                                           {"when": "input.severity > 9", "next": "ticket"}]}}}
    with pytest.raises(WorkflowError, match="step 'route': case 0: cannot evaluate"):
        await build(doc, Fake(classify=classify)).ainvoke(initial_state({"severity": 1, "team": "ops"}), config())


async def test_a_graph_rebuilt_on_the_same_checkpoints_resumes_after_the_gate():
    # What the runner does after a restart: compile again, resume from the checkpoint.
    saver = InMemorySaver()
    definition = Definition.from_dict(ARTICLE)
    before = Fake()
    await compile_workflow(definition, before, checkpointer=saver).ainvoke(
        initial_state({"topic": "owls", "limit": 1}), config())
    after = Fake()
    done = await compile_workflow(definition, after, checkpointer=saver).ainvoke(
        Command(resume={"approved": True}), config())
    assert [n for n, _ in after.calls] == ["publish"]
    assert done["outputs"]["draft"] == "draft done"

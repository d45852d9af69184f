"""Saving a workflow: every class of mistake is refused with a pointer at the bad field."""

import copy

import jsonschema
import pytest

from agentstead.workflows.definition import Definition
from agentstead.workflows.validate import Problem, schema, validate, validate_input

AGENTS = {"researcher", "writer"}
TOOLS = {"http_get", "calculator"}

VALID = {
    "name": "Article",
    "inputs": {"topic": {"type": "string"}, "words": {"type": "number", "required": False}},
    "start": "gather",
    "steps": {
        "gather": {"kind": "parallel", "steps": ["research", "fetch"], "next": "draft"},
        "research": {"kind": "agent", "agent_id": "researcher", "input": "Research {{ input.topic }}",
                     "timeout_seconds": 60, "retry": {"max_attempts": 3, "backoff_seconds": 1}},
        "fetch": {"kind": "tool", "tool": "http_get", "arguments": {"url": "https://example.org/{{ input.topic }}"}},
        "draft": {"kind": "agent", "agent_id": "writer", "next": "route",
                  "input": "{{ steps.research.output }} {{ steps.fetch.output }} {{ steps.gather.output.fetch }}"},
        "route": {"kind": "branch", "cases": [{"when": 'steps.draft.output == ""', "next": "draft_again"}],
                  "default": "review"},
        "draft_again": {"kind": "agent", "agent_id": "writer", "input": "Try again: {{ input.topic }}",
                        "next": "review"},
        "review": {"kind": "approval", "prompt": "Publish? {{ steps.draft.output }}", "on_approve": "publish",
                   "on_reject": "discard"},
        "publish": {"kind": "tool", "tool": "calculator",
                    "arguments": {"expression": "{{ input.words }}", "note": ["{{ steps.review.output.comment }}"]}},
        "discard": {"kind": "agent", "agent_id": "writer", "input": "Why: {{ steps.review.output.comment }}"},
    },
}


def check(doc):
    return validate(doc, agents=AGENTS, tools=TOOLS)


def mutated(change):
    doc = copy.deepcopy(VALID)
    change(doc)
    return doc


def pointers(problems):
    return [p.pointer for p in problems]


def test_the_valid_definition_passes_and_the_schema_is_a_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(schema())
    assert check(VALID) == []
    definition = Definition.from_dict(VALID)
    assert definition.steps["research"].retry.max_attempts == 3
    assert definition.inputs["topic"].required and not definition.inputs["words"].required


@pytest.mark.parametrize("change,pointer,fragment", [
    (lambda d: d.pop("start"), "/start", "is required"),
    (lambda d: d["steps"]["draft"].pop("agent_id"), "/steps/draft/agent_id", "is required"),
    (lambda d: d["steps"]["draft"].update(extra=1), "/steps/draft/extra", "not allowed"),
    (lambda d: d["steps"]["draft"].update(input=3), "/steps/draft/input", "must be a string"),
    (lambda d: d["steps"]["draft"].update(kind="loop"), "/steps/draft/kind", "must be one of"),
    (lambda d: d["steps"]["route"].update(cases=[]), "/steps/route/cases", "must not be empty"),
    (lambda d: d["steps"]["research"]["retry"].update(max_attempts=0), "/steps/research/retry/max_attempts",
     "minimum"),
    (lambda d: d["steps"]["research"].update(timeout_seconds=0), "/steps/research/timeout_seconds", ""),
    (lambda d: d["steps"]["route"].update(retry={"max_attempts": 2}), "/steps/route/retry", "not allowed"),
    (lambda d: d["inputs"].update({"9lives": {"type": "string"}}), "/inputs/9lives", "not a valid name"),
    (lambda d: d["inputs"]["topic"].update(type="date"), "/inputs/topic/type", "must be one of"),
    (lambda d: d["steps"].update(input=d["steps"].pop("discard")), "/steps/input", "reserved"),
    (lambda d: d["steps"]["gather"].update(steps=["research", "research"]), "/steps/gather/steps",
     "same step twice"),
])
def test_schema_problems_point_at_the_field(change, pointer, fragment):
    problems = check(mutated(change))
    assert pointer in pointers(problems), problems
    assert fragment in next(p.message for p in problems if p.pointer == pointer)


def test_unknown_step_references():
    def change(d):
        d["start"] = "nowhere"
        d["steps"]["draft"]["next"] = "summarize"
        d["steps"]["route"]["cases"][0]["next"] = "ghost"
        d["steps"]["review"]["on_reject"] = "bin"
        d["steps"]["gather"]["steps"].append("phantom")
    problems = check(mutated(change))
    assert Problem("/start", "unknown step 'nowhere'") in problems
    assert Problem("/steps/draft/next", "unknown step 'summarize'") in problems
    assert Problem("/steps/route/cases/0/next", "unknown step 'ghost'") in problems
    assert Problem("/steps/review/on_reject", "unknown step 'bin'") in problems
    assert Problem("/steps/gather/steps/2", "unknown step 'phantom'") in problems


def test_unreachable_steps():
    doc = mutated(lambda d: d["steps"].update(orphan={"kind": "agent", "agent_id": "writer", "input": "hi"}))
    assert pointers(check(doc)) == ["/steps/orphan"]
    assert "unreachable" in check(doc)[0].message


def test_cycles_are_refused_at_the_closing_field():
    doc = mutated(lambda d: d["steps"]["draft_again"].update(next="draft"))
    problems = check(doc)
    assert pointers(problems) == ["/steps/draft_again/next"]
    assert "cycle: draft → route → draft_again → draft" in problems[0].message
    self_loop = mutated(lambda d: d["steps"]["draft"].update(next="draft"))
    problems = check(self_loop)
    assert Problem("/steps/draft/next", "cycle: draft → draft; workflows may not loop") in problems
    assert "/steps/route" in pointers(problems)  # nothing leads to route any more


def test_a_cycle_through_a_parallel_join():
    doc = mutated(lambda d: d["steps"]["draft"].update(next="gather"))
    problems = [p for p in check(doc) if "cycle" in p.message]
    assert pointers(problems) == ["/steps/draft/next"]
    assert "gather → research → gather → draft → gather" in problems[0].message


def test_unknown_agents_and_tools():
    def change(d):
        d["steps"]["research"]["agent_id"] = "oracle"
        d["steps"]["fetch"]["tool"] = "shell"
    assert check(mutated(change)) == [Problem("/steps/research/agent_id", "unknown agent 'oracle'"),
                                      Problem("/steps/fetch/tool", "unknown tool 'shell'")]


def test_references_to_steps_not_guaranteed_to_have_run():
    # draft_again runs only on one branch: review may not rely on it.
    doc = mutated(lambda d: d["steps"]["review"].update(prompt="{{ steps.draft_again.output }}"))
    problems = check(doc)
    assert pointers(problems) == ["/steps/review/prompt"]
    assert "'draft_again' is not guaranteed to have run before 'review'" in problems[0].message
    # A later step, and a step's own output.
    later = mutated(lambda d: d["steps"]["draft"].update(input="{{ steps.publish.output }}"))
    assert pointers(check(later)) == ["/steps/draft/input"]
    own = mutated(lambda d: d["steps"]["draft"].update(input="{{ steps.draft.output }}"))
    assert "its own output" in check(own)[0].message
    # Conditions too.
    when = mutated(lambda d: d["steps"]["route"]["cases"][0].update(when="steps.review.output.approved"))
    assert pointers(check(when)) == ["/steps/route/cases/0/when"]


def test_parallel_members_cannot_see_each_other_but_everything_after_the_join_can():
    doc = mutated(lambda d: d["steps"]["fetch"]["arguments"].update(url="{{ steps.research.output }}"))
    problems = check(doc)
    assert pointers(problems) == ["/steps/fetch/arguments/url"]
    assert "runs alongside this step in parallel group 'gather'" in problems[0].message
    # The group's own output only exists after the join.
    early = mutated(lambda d: d["steps"]["research"].update(input="{{ steps.gather.output }}"))
    assert pointers(check(early)) == ["/steps/research/input"]


def test_parallel_group_rules():
    def change(d):
        d["steps"]["research"]["next"] = "draft"
        d["steps"]["draft_again"]["next"] = "fetch"
        d["steps"]["gather"]["steps"].append("route")
    problems = check(mutated(change))
    assert "/steps/research/next" in pointers(problems)
    assert "/steps/draft_again/next" in pointers(problems)
    assert "/steps/gather/steps/2" in pointers(problems)
    assert "a parallel group runs agent or tool steps only" in \
        next(p.message for p in problems if p.pointer == "/steps/gather/steps/2")
    start = mutated(lambda d: d.update(start="research"))
    assert "/start" in pointers(check(start))


def test_templates_and_inputs():
    def change(d):
        d["steps"]["draft"]["input"] = "{{ input.audience }} {{ steps.nope.output }}"
        d["steps"]["fetch"]["arguments"]["url"] = "{{ input.topic | upper }}"
        d["steps"]["discard"]["input"] = "{{ input.topic"
        d["steps"]["route"]["cases"][0]["when"] = "open('/etc/passwd')"
        d["steps"]["publish"]["arguments"]["a/b"] = "{{ input.ghost }}"
    problems = check(mutated(change))
    by_pointer = {}
    for p in problems:
        by_pointer.setdefault(p.pointer, []).append(p.message)
    assert by_pointer["/steps/draft/input"] == ["input.audience: 'audience' is not a declared input",
                                               "steps.nope.output: unknown step 'nope'"]
    assert "only a dotted reference" in by_pointer["/steps/fetch/arguments/url"][0]
    assert "never closed" in by_pointer["/steps/discard/input"][0]
    assert "function calls are not allowed" in by_pointer["/steps/route/cases/0/when"][0]
    assert "not a declared input" in by_pointer["/steps/publish/arguments/a~1b"][0]


def test_a_run_input():
    definition = Definition.from_dict(VALID)
    assert validate_input(definition, {"topic": "owls", "words": 300}) == []
    assert validate_input(definition, {"topic": "owls"}) == []
    assert validate_input(definition, {"words": True, "colour": "red"}) == [
        Problem("/topic", "required input missing"), Problem("/words", "must be a number"),
        Problem("/colour", "not a declared input")]
    assert validate_input(definition, ["owls"]) == [Problem("", "the input must be an object")]

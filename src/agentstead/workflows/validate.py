"""Validation at save time: every problem as (JSON pointer, message).

First the JSON Schema (the published contract, `contracts/workflow.schema.json`);
if that fails nothing else is checked, since the graph checks assume the shape.
Then the graph: unknown step references, the rules of parallel groups,
unreachable steps, cycles (all refused in this version), unknown agents and
tools, malformed templates and conditions, undeclared inputs, and references
to steps that are not guaranteed to have run first.

"Guaranteed to have run" is dominance on the step graph, with one twist: a
parallel group's join waits for *all* its members, so after the join every
member (and the group itself) counts as run, where an ordinary merge point only
keeps what *every* way into it had run.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import deque
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema

from . import expressions, templates
from .definition import WORK_KINDS, AgentStep, ApprovalStep, BranchStep, Definition, ParallelStep, ToolStep
from .references import Reference
from .templates import escape

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "contracts" / "workflow.schema.json"


@dataclasses.dataclass(frozen=True)
class Problem:
    pointer: str  # RFC 6901, into the definition (or into the run input for validate_input)
    message: str

    def to_json(self) -> dict:
        return {"pointer": self.pointer, "message": self.message}


@functools.cache
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def validate(doc: Any, *, agents: set[str] | frozenset[str], tools: set[str] | frozenset[str]) -> list[Problem]:
    """All problems with a definition document; empty means it may be saved and compiled."""
    problems = schema_problems(doc)
    if problems:
        return problems
    return graph_problems(Definition.from_dict(doc), agents=agents, tools=tools)


# ---- the JSON Schema ---------------------------------------------------------------

def schema_problems(doc: Any) -> list[Problem]:
    seen: dict[tuple[str, str], Problem] = {}
    for error in _validator().iter_errors(doc):
        problem = _from_schema_error(error)
        seen.setdefault((problem.pointer, problem.message), problem)
    return sorted(seen.values(), key=lambda p: (p.pointer, p.message))


def _pointer(path: Iterable[Any]) -> str:
    return "".join(f"/{escape(str(p))}" for p in path)


def _from_schema_error(error: jsonschema.ValidationError) -> Problem:
    """Point at the field itself (the missing one, the unexpected one, the bad key)
    rather than at the object that holds it, and say it in plain words."""
    path = list(error.absolute_path)
    kind, value = error.validator, error.validator_value
    if "propertyNames" in error.absolute_schema_path:
        name = error.instance
        if kind == "not":
            return Problem(_pointer(path + [name]), f"'{name}' is a reserved name")
        return Problem(_pointer(path + [name]),
                       f"'{name}' is not a valid name: start with a letter, then letters, digits or underscores "
                       "(at most 64)")
    if kind == "required":
        missing = [k for k in value if isinstance(error.instance, dict) and k not in error.instance]
        name = missing[0] if missing else value[0]
        return Problem(_pointer(path + [name]), "is required")
    if kind in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        name = extra[0] if extra else ""
        return Problem(_pointer(path + [name]), "is not allowed here"
                       + (f" (allowed: {', '.join(sorted(allowed))})" if allowed else ""))
    if kind == "type":
        return Problem(_pointer(path), f"must be {_article(value)}")
    if kind == "enum":
        return Problem(_pointer(path), "must be one of " + ", ".join(map(json.dumps, value)))
    if kind == "not":
        return Problem(_pointer(path), f"{json.dumps(error.instance)} is a reserved name")
    if kind == "pattern":
        return Problem(_pointer(path), "must start with a letter, then letters, digits or underscores (at most 64)")
    if kind == "minItems" and value == 1:
        return Problem(_pointer(path), "must not be empty")
    if kind == "minProperties" and value == 1:
        return Problem(_pointer(path), "must not be empty")
    if kind == "uniqueItems":
        return Problem(_pointer(path), "must not list the same step twice")
    return Problem(_pointer(path), error.message)


def _article(type_name: Any) -> str:
    if isinstance(type_name, list):
        return " or ".join(_article(t) for t in type_name)
    return {"object": "an object", "array": "an array", "integer": "an integer"}.get(type_name, f"a {type_name}")


# ---- the graph -------------------------------------------------------------------

def _join(group: str) -> str:
    # Step names are identifiers, so a dash can never collide with one.
    return f"{group}-join"


def _at(step: str, field: str = "") -> str:
    return f"/steps/{step}{field}"


def _unknown_targets(definition: Definition) -> list[Problem]:
    steps = definition.steps
    problems = [] if definition.start in steps else [Problem("/start", f"unknown step '{definition.start}'")]
    for name, step in steps.items():
        for field, target in step.targets():
            if target not in steps:
                problems.append(Problem(_at(name, field), f"unknown step '{target}'"))
    return problems


def _groups(definition: Definition, problems: list[Problem]) -> dict[str, str]:
    """Parallel groups: members are agent or tool steps that belong to exactly one group,
    continue only at its join, and are entered only through it. Member → group."""
    steps = definition.steps
    group_of: dict[str, str] = {}
    for name, step in steps.items():
        if not isinstance(step, ParallelStep):
            continue
        for i, member in enumerate(step.steps):
            if member not in steps:
                continue
            if steps[member].kind not in WORK_KINDS:
                problems.append(Problem(_at(name, f"/steps/{i}"), f"'{member}' is a {steps[member].kind} step; "
                                        "a parallel group runs agent or tool steps only"))
            elif member in group_of:
                problems.append(Problem(_at(name, f"/steps/{i}"),
                                        f"'{member}' is already in parallel group '{group_of[member]}'"))
            else:
                group_of[member] = name
    for member, group in group_of.items():
        if steps[member].targets():
            problems.append(Problem(_at(member, "/next"), f"'{member}' runs in parallel group '{group}', which "
                                    f"continues at the group's own next; remove this one"))
    if definition.start in group_of:
        problems.append(Problem("/start", f"'{definition.start}' runs in parallel group "
                                f"'{group_of[definition.start]}'; start at the group instead"))
    for name, step in steps.items():
        if isinstance(step, ParallelStep):
            continue
        for field, target in step.targets():
            if target in group_of:
                problems.append(Problem(_at(name, field), f"'{target}' runs in parallel group "
                                        f"'{group_of[target]}'; go to the group instead"))
    return group_of


def _edges(steps: dict, group_of: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """The analysis graph: steps plus one join node per parallel group; each edge keeps
    the pointer of the field that makes it, for precise cycle reports."""
    edges: dict[str, list[tuple[str, str]]] = {name: [] for name in steps}
    for name, step in steps.items():
        if isinstance(step, ParallelStep):
            edges[_join(name)] = [(_at(name, "/next"), step.next)] if step.next in steps else []
            edges[name] = [(_at(name, f"/steps/{i}"), m) for i, m in enumerate(step.steps)
                           if m in steps and group_of.get(m) == name]
        elif name in group_of:
            edges[name] = [(_at(group_of[name], "/steps/" + str(steps[group_of[name]].steps.index(name))),
                            _join(group_of[name]))]
        else:
            edges[name] = [(_at(name, field), t) for field, t in step.targets() if t in steps]
    return edges


def _unknown_names(steps: dict, agents, tools) -> list[Problem]:
    problems = []
    for name, step in steps.items():
        if isinstance(step, AgentStep) and step.agent_id not in agents:
            problems.append(Problem(_at(name, "/agent_id"), f"unknown agent '{step.agent_id}'"))
        if isinstance(step, ToolStep) and step.tool not in tools:
            problems.append(Problem(_at(name, "/tool"), f"unknown tool '{step.tool}'"))
    return problems


def graph_problems(definition: Definition, *, agents: set[str] | frozenset[str],
                   tools: set[str] | frozenset[str]) -> list[Problem]:
    steps = definition.steps
    problems = _unknown_targets(definition)
    group_of = _groups(definition, problems)
    edges = _edges(steps, group_of)

    reachable = _reachable(definition.start, edges) if definition.start in steps else set()
    for name in steps:
        if name not in reachable and definition.start in steps:
            problems.append(Problem(_at(name), f"unreachable: no path from start '{definition.start}' leads here"))

    cycles = _cycles(edges)
    problems.extend(cycles)
    problems.extend(_unknown_names(steps, agents, tools))

    # Templates and conditions: syntax, then what they reference.
    ran_before = _ran_before(definition.start, edges, steps) if not cycles and reachable else {}
    for name, step in steps.items():
        for pointer, refs, error in _references_of(name, step):
            if error:
                problems.append(Problem(pointer, error))
                continue
            for ref in refs:
                message = _reference_problem(ref, name, definition, ran_before, group_of)
                if message:
                    problems.append(Problem(pointer, message))
    return problems


def _references_of(name: str, step) -> list[tuple[str, list[Reference], str | None]]:
    """(pointer, references, syntax error) for each template or condition of a step."""
    base = f"/steps/{name}"
    sources: list[tuple[str, str, str]] = []  # (pointer, text, "template" | "condition")
    if isinstance(step, AgentStep):
        sources.append((f"{base}/input", step.input, "template"))
    elif isinstance(step, ToolStep):
        sources += [(p, s, "template") for p, s in templates.strings_in(step.arguments, f"{base}/arguments")]
    elif isinstance(step, ApprovalStep):
        sources.append((f"{base}/prompt", step.prompt, "template"))
    elif isinstance(step, BranchStep):
        sources += [(f"{base}/cases/{i}/when", c.when, "condition") for i, c in enumerate(step.cases)]
    found = []
    for pointer, text, kind in sources:
        try:
            refs = templates.references(text) if kind == "template" else expressions.references(text)
            found.append((pointer, refs, None))
        except (templates.TemplateError, expressions.ExpressionError) as exc:
            found.append((pointer, [], str(exc)))
    return found


def _reference_problem(ref: Reference, name: str, definition: Definition, ran_before: Mapping[str, set[str]],
                       group_of: Mapping[str, str]) -> str | None:
    text = ".".join(ref)
    if ref[0] == "input":
        return None if ref[1] in definition.inputs else f"{text}: '{ref[1]}' is not a declared input"
    target = ref[1]
    if target not in definition.steps:
        return f"{text}: unknown step '{target}'"
    if name not in ran_before:
        return None  # unreachable or cyclic: reported already, order is meaningless
    if target == name:
        return f"{text}: a step cannot use its own output"
    if target in ran_before[name]:
        return None
    if group_of.get(target) and group_of.get(target) == group_of.get(name):
        return (f"{text}: '{target}' runs alongside this step in parallel group '{group_of[name]}'; "
                "its output is available after the group")
    return f"{text}: '{target}' is not guaranteed to have run before '{name}'"


def _reachable(start: str, edges: Mapping[str, list[tuple[str, str]]]) -> set[str]:
    seen, queue = {start}, deque([start])
    while queue:
        for _, target in edges.get(queue.popleft(), []):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def _cycles(edges: Mapping[str, list[tuple[str, str]]]) -> list[Problem]:
    """One problem per edge that closes a cycle, at the field making that edge."""
    white, grey, black = 0, 1, 2
    colour = {node: white for node in edges}
    problems: list[Problem] = []
    for root in edges:
        if colour[root] != white:
            continue
        colour[root] = grey
        path = [root]
        stack = [iter(edges[root])]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                stack.pop()
                colour[path.pop()] = black
                continue
            pointer, target = step
            if colour[target] == grey:
                loop = path[path.index(target):] + [target]
                shown = [n.removesuffix("-join") for n in loop]  # a join reads as its group
                problems.append(Problem(pointer, "cycle: " + " → ".join(shown) + "; workflows may not loop"))
            elif colour[target] == white:
                colour[target] = grey
                path.append(target)
                stack.append(iter(edges[target]))
    return problems


def _ran_before(start: str, edges: Mapping[str, list[tuple[str, str]]], steps: Mapping[str, Any]) -> dict[str, set[str]]:
    """For each reachable node of an acyclic graph, the steps whose output is
    guaranteed to exist when it starts."""
    reachable = _reachable(start, edges)
    preds: dict[str, list[str]] = {n: [] for n in reachable}
    indegree = {n: 0 for n in reachable}
    for node in reachable:
        for _, target in edges[node]:
            preds[target].append(node)
            indegree[target] += 1
    before: dict[str, set[str]] = {}
    after: dict[str, set[str]] = {}
    ready = deque([start])
    while ready:
        node = ready.popleft()
        incoming = [after[p] for p in preds[node]]
        if not incoming:
            before[node] = set()
        elif node.endswith("-join"):
            before[node] = set().union(*incoming)  # waits for every member
        else:
            before[node] = set.intersection(*incoming)  # any one way in
        if node.endswith("-join"):
            after[node] = before[node] | {node.removesuffix("-join")}
        elif isinstance(steps[node], ParallelStep):
            after[node] = before[node]  # the group's output exists only after its join
        else:
            after[node] = before[node] | {node}
        for _, target in edges[node]:
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return {n: s for n, s in before.items() if not n.endswith("-join")}


# ---- a run's input -------------------------------------------------------------------

_PY_TYPES = {"string": (str,), "number": (int, float), "boolean": (bool,)}


def validate_input(definition: Definition, run_input: Any) -> list[Problem]:
    """Problems with the input of one run; pointers are into that input."""
    if not isinstance(run_input, Mapping):
        return [Problem("", "the input must be an object")]
    problems = []
    for name, spec in definition.inputs.items():
        if name not in run_input:
            if spec.required:
                problems.append(Problem(f"/{escape(name)}", "required input missing"))
            continue
        value = run_input[name]
        # bool is an int in Python; a number input must not accept true.
        if not isinstance(value, _PY_TYPES[spec.type]) or (spec.type == "number" and isinstance(value, bool)):
            problems.append(Problem(f"/{escape(name)}", f"must be a {spec.type}"))
    for name in run_input:
        if name not in definition.inputs:
            problems.append(Problem(f"/{escape(str(name))}", "not a declared input"))
    return problems

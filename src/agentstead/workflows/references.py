"""References: the only way templates and conditions reach data.

A reference is a dotted path, `input.<name>` or `steps.<step>.output[.<key>...]`.
Both templates and expressions parse to the same tuples, so validation checks
them once and rendering and evaluation resolve them the same way.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

Reference = tuple[str, ...]

# Segments are plain names; a leading underscore is refused so nothing can
# name a dunder, even though resolution only ever looks up mapping keys.
SEGMENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
ROOTS = ("input", "steps")


class UnresolvedReference(ValueError):
    """A reference cannot be resolved against the data at run time."""


def shape_problem(ref: Reference) -> str | None:
    """Why a reference is malformed regardless of the definition, or None."""
    text = ".".join(ref)
    for segment in ref:
        if not SEGMENT.match(segment):
            return f"'{segment}' in {text} is not a plain name (letters, digits, underscores; not starting with _)"
    if ref[0] not in ROOTS:
        return f"{text} must start with input. or steps."
    if ref[0] == "input" and len(ref) != 2:
        return f"{text}: an input is referenced as input.<name>"
    if ref[0] == "steps" and (len(ref) < 3 or ref[2] != "output"):
        return f"{text}: a step is referenced as steps.<name>.output"
    return None


def context(run_input: Mapping[str, Any], outputs: Mapping[str, Any]) -> dict:
    """What references resolve against: the run's input and the outputs of the steps that ran."""
    return {"input": dict(run_input), "steps": {name: {"output": out} for name, out in outputs.items()}}


def resolve(ref: Reference, ctx: Mapping[str, Any]) -> Any:
    text = ".".join(ref)
    if ref[0] == "input":
        # An optional input the run did not give is None (renders as empty text).
        return ctx["input"].get(ref[1])
    steps = ctx["steps"]
    if ref[1] not in steps:
        raise UnresolvedReference(f"{text}: step '{ref[1]}' has not run")
    value: Any = steps[ref[1]]["output"]
    for depth, key in enumerate(ref[3:], start=3):
        if not isinstance(value, Mapping):
            raise UnresolvedReference(f"{text}: {'.'.join(ref[:depth])} is not an object")
        if key not in value:
            raise UnresolvedReference(f"{text}: {'.'.join(ref[:depth])} has no '{key}'")
        value = value[key]
    return value

"""A workflow definition as the person edits it: JSON text with two-space indents (MicroPython's
json has none), the text parsed back with a plain reason when it is not an object, a first
example to start from, and the values of a run's inputs typed from their declared types.
Pure; the workflows page (workflows.py) uses it."""

import json


def example(agent_id):
    """A first workflow to edit: one agent step, an approval, one more agent step."""
    return {"name": "Draft and review", "description": "Draft a text, ask a person, then polish it.",
            "inputs": {"topic": {"type": "string", "description": "What to write about"}},
            "start": "draft",
            "steps": {"draft": {"kind": "agent", "agent_id": agent_id or "<an agent id>",
                                "input": "Write three sentences about {{ input.topic }}.", "next": "review"},
                      "review": {"kind": "approval", "prompt": "Publish this draft?\n{{ steps.draft.output }}",
                                 "on_approve": "polish"},
                      "polish": {"kind": "agent", "agent_id": agent_id or "<an agent id>",
                                 "input": "Polish: {{ steps.draft.output }}"}}}


def pretty(value):
    """JSON with two-space indents and sorted keys (MicroPython's json has no indent)."""
    return _pretty(value, "")


def _pretty(v, pad):
    inner = pad + "  "
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{\n" + ",\n".join(inner + json.dumps(k) + ": " + _pretty(v[k], inner) for k in _order(v)) + "\n" + pad + "}"
    if isinstance(v, list):
        if not v:
            return "[]"
        return "[\n" + ",\n".join(inner + _pretty(x, inner) for x in v) + "\n" + pad + "]"
    return json.dumps(v)


def _order(d):
    first = [k for k in ("name", "description", "kind", "inputs", "start", "steps") if k in d]
    return first + sorted(k for k in d if k not in first)


def parse_source(source):
    """(definition, None) or (None, why the text is not a JSON object)."""
    try:
        value = json.loads(source)
    except ValueError as exc:
        return None, "The definition is not valid JSON (%s)." % (exc.args[0] if exc.args else "syntax error")
    if not isinstance(value, dict):
        return None, "The definition must be a JSON object."
    return value, None


def coerce_inputs(spec, typed):
    """({name: value}, {name: message}) from the text typed for each declared input."""
    values, errors = {}, {}
    for name in sorted(spec or {}):
        kind = (spec[name] or {}).get("type", "string")
        text = (typed.get(name) or "").strip()
        required = (spec[name] or {}).get("required", True)
        if kind == "boolean":
            values[name] = typed.get(name) == "true"
            continue
        if not text:
            if required:
                errors[name] = "Required."
            continue
        if kind == "number":
            try:
                values[name] = float(text) if "." in text or "e" in text.lower() else int(text)
            except ValueError:
                errors[name] = "Enter a number."
        else:
            values[name] = typed.get(name)
    return values, errors

"""Templates: text with `{{ input.topic }}` and `{{ steps.research.output }}` in it.

Deliberately tiny (no Jinja): between `{{` and `}}` only a dotted reference
may appear, so a template can read data and do nothing else, and validation
can list exactly what it reads.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from .references import Reference, UnresolvedReference, resolve, shape_problem

MAX_LENGTH = 20_000
_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_DOTTED = re.compile(r"[^.\s]+(?:\.[^.\s]+)*\Z")


class TemplateError(ValueError):
    """The template is malformed or cannot be rendered; the message says where."""


Part = str | Reference  # literal text, or a reference (a tuple)


def parse(template: str) -> list[Part]:
    if not isinstance(template, str):
        raise TemplateError("a template must be a string")
    if len(template) > MAX_LENGTH:
        raise TemplateError(f"template longer than {MAX_LENGTH} characters")
    parts: list[Part] = []
    pos = 0
    for match in _TAG.finditer(template):
        _literal(parts, template, pos, match.start())
        body = match.group(1).strip()
        where = f"at character {match.start() + 1}"
        if not body:
            raise TemplateError(f"{where}: empty {{{{ }}}}")
        if not _DOTTED.match(body):
            raise TemplateError(f"{where}: only a dotted reference may appear in {{{{ }}}}, not {body!r}")
        ref = tuple(body.split("."))
        problem = shape_problem(ref)
        if problem:
            raise TemplateError(f"{where}: {problem}")
        parts.append(ref)
        pos = match.end()
    _literal(parts, template, pos, len(template))
    return parts


def _literal(parts: list[Part], template: str, start: int, end: int) -> None:
    text = template[start:end]
    opened = text.find("{{")
    if opened >= 0:
        # `{{` always starts a reference; an unclosed one is a mistake, not text.
        raise TemplateError(f"at character {start + opened + 1}: {{{{ is never closed with }}}}")
    if text:
        parts.append(text)


def references(template: str) -> list[Reference]:
    return [p for p in parse(template) if isinstance(p, tuple)]


def text_of(value: Any) -> str:
    """How a referenced value appears inside text: strings as they are, absent as nothing, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def render(template: str, ctx: Mapping[str, Any]) -> str:
    out = []
    for part in parse(template):
        if isinstance(part, tuple):
            try:
                out.append(text_of(resolve(part, ctx)))
            except UnresolvedReference as exc:
                raise TemplateError(str(exc)) from None
        else:
            out.append(part)
    return "".join(out)


def render_value(value: Any, ctx: Mapping[str, Any]) -> Any:
    """Render every string in a JSON value (tool arguments). A string that is exactly
    one reference keeps the referenced value's type, so a number stays a number."""
    if isinstance(value, str):
        parts = parse(value)
        if len(parts) == 1 and isinstance(parts[0], tuple):
            try:
                return resolve(parts[0], ctx)
            except UnresolvedReference as exc:
                raise TemplateError(str(exc)) from None
        return render(value, ctx)
    if isinstance(value, Mapping):
        return {k: render_value(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, ctx) for v in value]
    return value


def strings_in(value: Any, pointer: str) -> list[tuple[str, str]]:
    """(JSON pointer, string) for every string in a JSON value: the templates of tool arguments."""
    if isinstance(value, str):
        return [(pointer, value)]
    if isinstance(value, Mapping):
        return [item for k, v in value.items() for item in strings_in(v, f"{pointer}/{escape(str(k))}")]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in strings_in(v, f"{pointer}/{i}")]
    return []


def escape(token: str) -> str:
    """One JSON pointer token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")

"""The SPA's virtual nodes (frontend/src/vdom.py) as HTML: what the browser's Applier.build would
make of them, as markup. Text and attribute values are escaped; tag and attribute names must be
plain names (they come from the views' code, never from data); event handlers are left out (the
SPA attaches its own when it takes over)."""

from __future__ import annotations

import re
from typing import Callable

VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())
_TAG = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*\Z")
_ATTR = re.compile(r"[a-zA-Z_][a-zA-Z0-9_.:-]*\Z")
_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_QUOTED = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})


class Unwritable(ValueError):
    """A tree this module will not write as HTML (a script or style element, an odd name)."""


def to_html(node, rendered: Callable) -> str:
    """`rendered` is vdom.rendered (a memo's node)."""
    out: list[str] = []
    _write(rendered(node), rendered, out, svg=False, select_value=None)
    return "".join(out)


def _text(s: str) -> str:
    return s.translate(_TEXT) if "&" in s or "<" in s or ">" in s else s


def _quoted(s: str) -> str:
    return s.translate(_QUOTED) if "&" in s or "<" in s or ">" in s or '"' in s else s


_SPECIAL = frozenset(("textarea", "select", "option"))
# names checked once (views use a few dozen)
_tags_ok: set[str] = set()
_attrs_ok: set[str] = set()


def _checked(name: str, pattern: re.Pattern, ok: set[str]) -> None:
    if not pattern.match(name) or (ok is _tags_ok and name.lower() in ("script", "style")):
        raise Unwritable(f"{'element' if ok is _tags_ok else 'attribute'} {name!r} is not written as HTML")
    ok.add(name)


def _write(node, rendered, out: list[str], svg: bool, select_value) -> None:
    tag = node.tag
    if tag is None:
        out.append(_text(node.text))
        return
    if tag not in _tags_ok:
        _checked(tag, _TAG, _tags_ok)
    svg = svg or tag == "svg"
    attrs = node.attrs
    content = None
    if not svg and tag in _SPECIAL:
        attrs = dict(attrs)
        if tag == "textarea":
            content = attrs.pop("value", None)
        elif tag == "select":
            select_value = attrs.pop("value", None)
        elif select_value is not None and attrs.get("selected") is None:
            attrs["selected"] = str(attrs.get("value", "")) == str(select_value)
    out.append("<" + tag)
    for name, value in attrs.items():
        if value is None or value is False or name.startswith("on"):
            continue
        if name not in _attrs_ok:
            _checked(name, _ATTR, _attrs_ok)
        out.append(" " + name if value is True else ' %s="%s"' % (name, _quoted(str(value))))
    out.append(">")
    if tag in VOID and not svg:
        return
    if tag in ("pre", "textarea") and not svg:
        out.append("\n")     # the parser drops a newline right after the start tag: this one, not the text's
    if content is not None:
        out.append(_text(str(content)))
    else:
        inner = select_value if tag in ("select", "optgroup") else None
        for child in node.children:
            _write(rendered(child), rendered, out, svg, inner)
    out.append("</%s>" % tag)

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


def _write(node, rendered, out: list[str], svg: bool, select_value) -> None:
    if node.tag is None:
        out.append(node.text.translate(_TEXT))
        return
    tag = node.tag
    if not _TAG.match(tag) or tag.lower() in ("script", "style"):
        raise Unwritable(f"<{tag}> is not written as HTML")
    svg = svg or tag == "svg"
    attrs = dict(node.attrs)
    content = None
    if not svg:
        if tag == "textarea":
            content = attrs.pop("value", None)
        elif tag == "select":
            select_value = attrs.pop("value", None)
        elif tag == "option" and select_value is not None and attrs.get("selected") is None:
            attrs["selected"] = str(attrs.get("value", "")) == str(select_value)
    out.append("<" + tag)
    for name, value in attrs.items():
        if value is None or value is False or name.startswith("on"):
            continue
        if not _ATTR.match(name):
            raise Unwritable(f"attribute {name!r} is not written as HTML")
        out.append(" " + name if value is True else ' %s="%s"' % (name, str(value).translate(_QUOTED)))
    out.append(">")
    if tag in VOID and not svg:
        return
    if tag in ("pre", "textarea") and not svg:
        out.append("\n")     # the parser drops a newline right after the start tag: this one, not the text's
    if content is not None:
        out.append(str(content).translate(_TEXT))
    else:
        for child in node.children:
            _write(rendered(child), rendered, out, svg, select_value if tag in ("select", "optgroup") else None)
    out.append("</%s>" % tag)

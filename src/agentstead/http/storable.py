"""The input boundary: what the store can hold.

Every JSON document from outside (request bodies, WebSocket messages), every
header and every number read from a header or a query string passes here.
SQLite keeps integers in 64 bits and text as UTF-8; Python's json module
accepts more (integers of any size, NaN and Infinity, 1e400 as infinity, lone
surrogates from a `\\ud800` escape, nesting until the interpreter's recursion
limit), aiohttp turns undecodable header bytes into lone surrogates, and int()
reads "١٢", " 7 " and "1_000". What the store cannot hold is refused here,
with a pointer to where, so no handler or store function ever meets it (a
500, or half a write). Pure: no I/O.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Iterable

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DEPTH = 64          # objects and arrays inside each other; no document of ours needs a tenth
_DECIMAL = re.compile(r"-?[0-9]{1,19}")   # ASCII digits only: int() also takes "١٢", " 7", "1_0"


class Unstorable(ValueError):
    """Well-formed input the store cannot hold; `pointer` is a JSON pointer into the document."""

    def __init__(self, pointer: str, message: str):
        super().__init__(f"{pointer}: {message}" if pointer else message)
        self.pointer, self.message = pointer, message


class _Unfit:
    """A parsed value the store cannot hold, kept in place so the walk can say where it is."""
    __slots__ = ("why",)

    def __init__(self, why: str):
        self.why = why


_BEYOND_64_BITS = "is an integer beyond 64 bits (-2^63 to 2^63-1)"


def _int(text: str) -> int | _Unfit:
    # Length first: int() of more than 4300 digits raises instead of parsing.
    if len(text) > 20:
        return _Unfit(_BEYOND_64_BITS)
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else _Unfit(_BEYOND_64_BITS)


def _float(text: str) -> float | _Unfit:
    value = float(text)
    return value if math.isfinite(value) else _Unfit("is a number too large to store")


def _constant(name: str) -> _Unfit:
    return _Unfit(f"is {name}, which is not a JSON number")


def text_ok(value: str) -> bool:
    """True when the string can be stored as UTF-8 (no lone surrogates)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _key(key: str) -> str:
    escaped = key.replace("~", "~0").replace("/", "~1")
    return escaped if text_ok(escaped) else escaped.encode("utf-8", "backslashreplace").decode("utf-8")


def check(value: Any) -> None:
    """Raise Unstorable for the first value the store cannot hold (depth, numbers, text)."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        node, pointer, depth = stack.pop()
        if isinstance(node, str):
            if not text_ok(node):
                raise Unstorable(pointer, "holds a lone surrogate (\\ud800 to \\udfff), which is not text")
        elif isinstance(node, _Unfit):
            raise Unstorable(pointer, node.why)
        elif isinstance(node, (dict, list)):
            if depth >= MAX_DEPTH:
                raise Unstorable(pointer, f"is nested deeper than {MAX_DEPTH} levels")
            items: Iterable = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in items:
                if isinstance(key, str) and not text_ok(key):
                    raise Unstorable(f"{pointer}/{_key(key)}", "is a name holding a lone surrogate, which is not text")
                stack.append((child, f"{pointer}/{_key(key) if isinstance(key, str) else key}", depth + 1))
        elif isinstance(node, float) and not math.isfinite(node):
            raise Unstorable(pointer, "is a number too large to store")
        elif isinstance(node, int) and not isinstance(node, bool) and not INT64_MIN <= node <= INT64_MAX:
            raise Unstorable(pointer, _BEYOND_64_BITS)


def loads(text: str) -> Any:
    """json.loads for outside input. Raises json.JSONDecodeError (not JSON) or Unstorable."""
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise Unstorable("", f"is nested deeper than {MAX_DEPTH} levels") from None
    check(value)
    return value


def decimal(text: str) -> int | None:
    """A base-10 integer written in ASCII digits (an optional "-") within 64 bits; else None."""
    if not _DECIMAL.fullmatch(text):
        return None
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else None


def bad_header(headers) -> str | None:
    """The name of the first header whose bytes are not UTF-8 (aiohttp keeps them as lone
    surrogates, which no digest, comparison or database column can take); None when all are."""
    for name, value in headers.items():
        if not (value.isascii() and name.isascii()) and not (text_ok(value) and text_ok(name)):
            return name if text_ok(name) else "(unreadable name)"
    return None

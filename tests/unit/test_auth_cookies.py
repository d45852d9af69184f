"""Reading one cookie out of a Cookie header without aiohttp's full parser (http/cookies.py::find)."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest

from agentstead.http.cookies import find

CASES = [
    ("as_access=abc", "abc"),
    ("theme=dark; as_access=abc; lang=en", "abc"),
    ("theme=dark;as_access=abc;lang=en", "abc"),
    ("  as_access =  abc  ", "abc"),
    ("as_access=a.b-c_d", "a.b-c_d"),
    ("as_access=first; as_access=second", "second"),     # the last one wins, as in aiohttp
    ("xas_access=evil; as_accessx=evil", None),          # names match whole, not as substrings
    ("as_access", None),                                 # no "=": no value
    ("as_access=", ""),
    ("", None),
    ("other=1", None),
]


@pytest.mark.parametrize("header,expected", CASES)
def test_find(header, expected):
    assert find(header, "as_access") == expected


@pytest.mark.parametrize("header,expected", [c for c in CASES if c[1] not in (None, "") and "first" not in c[0]])
def test_agrees_with_the_standard_parser_on_plain_headers(header, expected):
    parsed = SimpleCookie()
    parsed.load(header)
    assert parsed["as_access"].value == expected == find(header, "as_access")

"""Every refusal code the sign-in callback can send to `/signin?error=` (as the API
contract lists them) has a sentence on the sign-in page, so nobody sees a raw code."""

from __future__ import annotations

import ast
import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _page_errors() -> set[str]:
    tree = ast.parse((ROOT / "frontend" / "src" / "signin.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "ERRORS":
            return {k.value for k in node.value.keys}
    raise AssertionError("signin.py has no ERRORS table")


def _contract_codes() -> set[str]:
    spec = yaml.safe_load((ROOT / "src" / "agentstead" / "contracts" / "openapi.yaml").read_text())
    codes = set()
    for path in ("/auth/callback/{provider}", "/auth/link/{token}"):
        text = spec["paths"][path]["get"]["responses"]["302"]["description"]
        for group in re.findall(r"error=(?:CODE` \(([^)]*)\)|([a-z_]+))", text):
            codes |= {c.strip() for c in ",".join(group).split(",") if c.strip()}
    return codes


def test_every_callback_error_code_has_a_message():
    codes = _contract_codes()
    assert {"state_mismatch", "identity_conflict", "link_invalid"} <= codes
    assert codes - _page_errors() == set()

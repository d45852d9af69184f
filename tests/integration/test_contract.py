"""openapi.yaml is the source of truth: routes match it both ways, and it is served."""

from __future__ import annotations

import re

import pytest

from openapi_spec_validator import validate

from agentstead.app import create_app, load_openapi

from ..support.contract import ContractClient
from ..support.contract import validate as validate_response


def app_routes(app) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue  # added automatically beside every GET
        info = route.resource.get_info()
        path = info.get("formatter") or info.get("path")
        out.add((route.method.lower(), re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)))
    return out


def spec_routes(name: str = "openapi.yaml") -> set[tuple[str, str]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return {(m, p) for p, ops in load_openapi(name)["paths"].items() for m in ops if m in methods}


COMPAT = "openapi-compat.yaml"   # the protocol adapters' document (/v1, /lg)


@pytest.mark.parametrize("name", ["openapi.yaml", COMPAT])
def test_document_is_valid_openapi_3_1(name):
    spec = load_openapi(name)
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_every_route_is_documented_and_every_documented_route_exists(settings):
    app = create_app(settings)
    undocumented = app_routes(app) - spec_routes() - spec_routes(COMPAT)
    missing = (spec_routes() | spec_routes(COMPAT)) - app_routes(app)
    assert all(p.startswith(("/v1/", "/lg/")) for _, p in spec_routes(COMPAT))
    assert not any(p.startswith(("/v1/", "/lg/")) for _, p in spec_routes())
    assert not undocumented, f"routes missing from openapi.yaml: {sorted(undocumented)}"
    assert not missing, f"documented routes the app lacks: {sorted(missing)}"


async def test_openapi_json_is_the_yaml(client: ContractClient):
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    assert await resp.json() == load_openapi()
    resp = await client.get("/api/openapi-compat.json")
    assert resp.status == 200
    assert await resp.json() == load_openapi(COMPAT)


async def test_responses_are_validated_against_the_document(client: ContractClient):
    resp = await client.get("/healthz")
    assert resp.status == 200 and client.validated == 1
    # ...and the validator notices a body that breaks the contract.
    with pytest.raises(Exception) as info:
        validate_response("get", "/healthz", 200, "application/json", b'{"status": "ok"}')
    assert "Invalid" in type(info.value).__name__ or "Validation" in type(info.value).__name__


@pytest.mark.parametrize("name", ["openapi.yaml", COMPAT])
def test_every_operation_lists_its_real_status_codes_and_no_catch_all_default(name):
    """A `default` response documents every status, so a status-code check could never fail."""
    for path, operations in load_openapi(name)["paths"].items():
        for method, op in operations.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            codes = set(op["responses"])
            assert "default" not in codes, f"{method.upper()} {path} declares a default response"
            assert any(c.startswith(("1", "2", "3")) for c in codes), f"{method.upper()} {path}: no success"
            assert "429" in codes and "400" in codes, f"{method.upper()} {path}: every route may answer 400 and 429"

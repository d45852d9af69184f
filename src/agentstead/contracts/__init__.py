"""The contracts: openapi.yaml (REST), asyncapi.yaml (WebSocket) and the JSON Schemas they use.

openapi.yaml refers to `workflow.schema.json` (a file beside it, also published on
its own); `bundle` inlines such references so the served document
(/api/openapi.json) is self-contained and any OpenAPI tool resolves it offline.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

# External schemas openapi.yaml may reference, and the component each becomes.
EXTERNAL = {"workflow.schema.json": "WorkflowDefinition"}


@functools.cache
def external_schema(name: str) -> dict:
    return json.loads(resources.files(__name__).joinpath(name).read_text(encoding="utf-8"))


def _rebase(node: Any, base: str) -> Any:
    """A schema's own `#/...` references, made absolute within the OpenAPI document."""
    if isinstance(node, dict):
        out = {k: _rebase(v, base) for k, v in node.items() if k not in ("$schema", "$id")}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            out["$ref"] = base + ref[1:]
        return out
    if isinstance(node, list):
        return [_rebase(v, base) for v in node]
    return node


def bundle(doc: dict) -> dict:
    """The OpenAPI document with every reference to an external schema file inlined
    as a component (`{$ref: workflow.schema.json}` -> `#/components/schemas/WorkflowDefinition`)."""
    doc = copy.deepcopy(doc)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for file, component in EXTERNAL.items():
        schemas[component] = _rebase(external_schema(file), f"#/components/schemas/{component}")

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref in EXTERNAL:
                return {**{k: v for k, v in node.items() if k != "$ref"},
                        "$ref": f"#/components/schemas/{EXTERNAL[ref]}"}
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    for name, schema in list(schemas.items()):
        if name not in EXTERNAL.values():
            schemas[name] = walk(schema)
    doc["paths"] = walk(doc.get("paths", {}))
    return doc

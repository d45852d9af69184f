"""URL wiring only; handlers live in http/."""

from __future__ import annotations

from aiohttp import web

from .http import health, meta


def setup(app: web.Application) -> None:
    app.router.add_get("/", health.healthz, name="root")
    app.router.add_get("/healthz", health.healthz, name="healthz")
    app.router.add_get("/readyz", health.readyz, name="readyz")
    app.router.add_get("/metrics", health.metrics, name="metrics")
    app.router.add_get("/api/openapi.json", meta.openapi, name="openapi")
    app.router.add_get("/api/system/schema", meta.schema, name="system_schema")

"""URL wiring only; handlers live in http/."""

from __future__ import annotations

from aiohttp import web

from .http import account, admin, auth, health, meta


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/", health.healthz, name="root")
    r.add_get("/healthz", health.healthz, name="healthz")
    r.add_get("/readyz", health.readyz, name="readyz")
    r.add_get("/metrics", health.metrics, name="metrics")
    r.add_get("/api/openapi.json", meta.openapi, name="openapi")
    r.add_get("/api/system/schema", meta.schema, name="system_schema")

    r.add_get("/auth/providers", auth.providers, name="auth_providers")
    r.add_get("/auth/login/{provider}", auth.login, name="auth_login")
    r.add_get("/auth/callback/{provider}", auth.callback, name="auth_callback")
    r.add_get("/auth/link/{token}", auth.link, name="auth_link")
    r.add_post("/auth/refresh", auth.refresh, name="auth_refresh")
    r.add_post("/auth/logout", auth.logout, name="auth_logout")
    r.add_post("/auth/logout-all", auth.logout_all, name="auth_logout_all")
    r.add_post("/auth/ws-ticket", auth.ws_ticket, name="auth_ws_ticket")

    r.add_get("/api/me", account.me, name="me")
    r.add_get("/api/tokens", account.list_tokens, name="tokens")
    r.add_post("/api/tokens", account.create_token, name="tokens_create")
    r.add_delete("/api/tokens/{id}", account.revoke_token, name="token_revoke")

    r.add_get("/api/admin/users", admin.list_users, name="admin_users")
    r.add_patch("/api/admin/users/{id}", admin.update_user, name="admin_user_update")
    r.add_get("/api/admin/audit", admin.audit, name="admin_audit")

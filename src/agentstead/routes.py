"""URL wiring only; handlers live in http/."""

from __future__ import annotations

from aiohttp import web

from .http import account, admin, agents, auth, health, mcp, mcp_admin, meta, runs, sse, threads, workflows, ws


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

    r.add_get("/ws", ws.websocket, name="ws")
    r.add_post("/mcp", mcp.mcp, name="mcp")

    r.add_get("/api/me", account.me, name="me")
    r.add_get("/api/tokens", account.list_tokens, name="tokens")
    r.add_post("/api/tokens", account.create_token, name="tokens_create")
    r.add_delete("/api/tokens/{id}", account.revoke_token, name="token_revoke")

    r.add_get("/api/models", agents.models, name="models")
    r.add_get("/api/tools", agents.tools, name="tools")
    r.add_get("/api/agents", agents.list_agents, name="agents")
    r.add_post("/api/agents", agents.create_agent, name="agents_create")
    r.add_get("/api/agents/{id}", agents.get_agent, name="agent")
    r.add_patch("/api/agents/{id}", agents.update_agent, name="agent_update")
    r.add_delete("/api/agents/{id}", agents.delete_agent, name="agent_delete")
    r.add_get("/api/threads", threads.list_threads, name="threads")
    r.add_post("/api/threads", threads.create_thread, name="threads_create")
    r.add_get("/api/threads/{id}", threads.get_thread, name="thread")
    r.add_patch("/api/threads/{id}", threads.rename_thread, name="thread_rename")
    r.add_delete("/api/threads/{id}", threads.delete_thread, name="thread_delete")
    r.add_post("/api/threads/{id}/messages", threads.post_message, name="thread_message")
    r.add_get("/api/threads/{id}/stream", sse.thread_stream, name="thread_stream")
    r.add_get("/api/workflows", workflows.list_workflows, name="workflows")
    r.add_post("/api/workflows", workflows.create_workflow, name="workflows_create")
    r.add_get("/api/workflows/{id}", workflows.get_workflow, name="workflow")
    r.add_patch("/api/workflows/{id}", workflows.update_workflow, name="workflow_update")
    r.add_delete("/api/workflows/{id}", workflows.delete_workflow, name="workflow_delete")
    r.add_post("/api/workflows/{id}/runs", workflows.start_run, name="workflow_run")
    r.add_get("/api/runs", runs.list_runs, name="runs")
    r.add_get("/api/runs/{id}", runs.get_run, name="run")
    r.add_post("/api/runs/{id}/cancel", runs.cancel_run, name="run_cancel")
    r.add_post("/api/runs/{id}/resume", runs.resume_run, name="run_resume")
    r.add_get("/api/runs/{id}/stream", sse.run_stream, name="run_stream")
    r.add_get("/api/usage", runs.usage, name="usage")
    r.add_get("/api/admin/usage", runs.admin_usage, name="admin_usage")

    r.add_get("/api/admin/health", health.admin_health, name="admin_health")
    r.add_get("/api/admin/users", admin.list_users, name="admin_users")
    r.add_patch("/api/admin/users/{id}", admin.update_user, name="admin_user_update")
    r.add_get("/api/admin/users/{id}/identities", admin.list_identities, name="admin_user_identities")
    # {subject:.+}: a provider's subject may hold a "/" (sent as %2F)
    r.add_delete("/api/admin/users/{id}/identities/{provider}/{subject:.+}", admin.unlink_identity,
                 name="admin_user_identity_unlink")
    r.add_get("/api/admin/audit", admin.audit, name="admin_audit")
    r.add_get("/api/admin/mcp-servers", mcp_admin.list_servers, name="admin_mcp_servers")
    r.add_post("/api/admin/mcp-servers/{name}/refresh", mcp_admin.refresh_server, name="admin_mcp_server_refresh")

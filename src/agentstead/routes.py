"""URL wiring only; handlers live in http/."""

from __future__ import annotations

from aiohttp import web

from .http import account, admin, agents, auth, compat_langgraph, compat_langgraph_runs, compat_openai, health, meta, runs, sse, threads, workflows, ws


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/", health.healthz, name="root")
    r.add_get("/healthz", health.healthz, name="healthz")
    r.add_get("/readyz", health.readyz, name="readyz")
    r.add_get("/metrics", health.metrics, name="metrics")
    r.add_get("/api/openapi.json", meta.openapi, name="openapi")
    r.add_get("/api/openapi-compat.json", meta.openapi_compat, name="openapi_compat")
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

    r.add_get("/api/me", account.me, name="me")
    r.add_get("/api/tokens", account.list_tokens, name="tokens")
    r.add_post("/api/tokens", account.create_token, name="tokens_create")
    r.add_delete("/api/tokens/{id}", account.revoke_token, name="token_revoke")

    r.add_get("/api/models", agents.models, name="models")
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

    # The OpenAI-compatible endpoint (docs/protocols.md; contracts/openapi-compat.yaml).
    r.add_get("/v1/models", compat_openai.models, name="openai_models")
    r.add_post("/v1/chat/completions", compat_openai.chat_completions, name="openai_chat_completions")

    # The LangGraph API (Agent Protocol subset): the same services (docs/protocols.md).
    lg, lgr = compat_langgraph, compat_langgraph_runs
    r.add_get("/lg/info", lg.info, name="lg_info")
    r.add_post("/lg/assistants/search", lg.search_assistants, name="lg_assistants_search")
    r.add_get("/lg/assistants/{assistant_id}", lg.get_assistant, name="lg_assistant")
    r.add_get("/lg/assistants/{assistant_id}/graph", lg.assistant_graph, name="lg_assistant_graph")
    r.add_get("/lg/assistants/{assistant_id}/schemas", lg.assistant_schemas, name="lg_assistant_schemas")
    r.add_post("/lg/assistants", lg.not_supported, name="lg_assistants_create")
    r.add_post("/lg/threads", lg.create_thread, name="lg_threads_create")
    r.add_post("/lg/threads/search", lg.search_threads, name="lg_threads_search")
    r.add_get("/lg/threads/{thread_id}", lg.get_thread, name="lg_thread")
    r.add_patch("/lg/threads/{thread_id}", lg.update_thread, name="lg_thread_update")
    r.add_delete("/lg/threads/{thread_id}", lg.delete_thread, name="lg_thread_delete")
    r.add_get("/lg/threads/{thread_id}/state", lg.thread_state, name="lg_thread_state")
    r.add_get("/lg/threads/{thread_id}/state/{checkpoint_id}", lg.thread_state, name="lg_thread_state_at")
    r.add_post("/lg/threads/{thread_id}/state", lg.not_supported, name="lg_thread_state_update")
    r.add_post("/lg/threads/{thread_id}/history", lg.thread_history, name="lg_thread_history")
    r.add_post("/lg/threads/{thread_id}/runs", lgr.create_run, name="lg_runs_create")
    r.add_get("/lg/threads/{thread_id}/runs", lgr.list_runs, name="lg_runs")
    r.add_post("/lg/threads/{thread_id}/runs/stream", lgr.stream_run, name="lg_runs_stream")
    r.add_post("/lg/threads/{thread_id}/runs/wait", lgr.wait_run, name="lg_runs_wait")
    r.add_get("/lg/threads/{thread_id}/runs/{run_id}", lgr.get_run, name="lg_run")
    r.add_post("/lg/threads/{thread_id}/runs/{run_id}/cancel", lgr.cancel_run, name="lg_run_cancel")
    r.add_get("/lg/threads/{thread_id}/runs/{run_id}/join", lgr.join_run, name="lg_run_join")
    r.add_get("/lg/threads/{thread_id}/runs/{run_id}/stream", lgr.join_stream, name="lg_run_stream")
    r.add_post("/lg/runs", lgr.create_run, name="lg_stateless_runs_create")
    r.add_post("/lg/runs/stream", lgr.stream_run, name="lg_stateless_runs_stream")
    r.add_post("/lg/runs/wait", lgr.wait_run, name="lg_stateless_runs_wait")

    r.add_get("/api/admin/health", health.admin_health, name="admin_health")
    r.add_get("/api/admin/users", admin.list_users, name="admin_users")
    r.add_patch("/api/admin/users/{id}", admin.update_user, name="admin_user_update")
    r.add_get("/api/admin/users/{id}/identities", admin.list_identities, name="admin_user_identities")
    # {subject:.+}: a provider's subject may hold a "/" (sent as %2F)
    r.add_delete("/api/admin/users/{id}/identities/{provider}/{subject:.+}", admin.unlink_identity,
                 name="admin_user_identity_unlink")
    r.add_get("/api/admin/audit", admin.audit, name="admin_audit")

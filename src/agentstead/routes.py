"""URL wiring only; handlers live in http/."""

from __future__ import annotations

from aiohttp import web

from .http import (account, admin, agents, auth, compat_langgraph, compat_langgraph_runs, compat_openai,
                   conversation, first_page, health, mcp, mcp_admin, meta, runs, search, sse, threads, workflows, ws)


# (method, path, handler, name): one row per route, grouped by resource.
ROUTES = [
    ("GET", "/", health.healthz, "root"),
    ("GET", "/healthz", health.healthz, "healthz"),
    ("GET", "/readyz", health.readyz, "readyz"),
    # A page load, from Caddy: index.html with the page's first view (docs/architecture.md)
    ("GET", "/page/{path:.*}", first_page.page, "page"),
    ("GET", "/metrics", health.metrics, "metrics"),
    ("GET", "/api/openapi.json", meta.openapi, "openapi"),
    ("GET", "/api/system/schema", meta.schema, "system_schema"),

    ("GET", "/auth/providers", auth.providers, "auth_providers"),
    ("GET", "/auth/login/{provider}", auth.login, "auth_login"),
    ("GET", "/auth/callback/{provider}", auth.callback, "auth_callback"),
    ("GET", "/auth/link/{token}", auth.link, "auth_link"),
    ("POST", "/auth/refresh", auth.refresh, "auth_refresh"),
    ("POST", "/auth/logout", auth.logout, "auth_logout"),
    ("POST", "/auth/logout-all", auth.logout_all, "auth_logout_all"),
    ("POST", "/auth/ws-ticket", auth.ws_ticket, "auth_ws_ticket"),

    ("GET", "/ws", ws.websocket, "ws"),

    ("GET", "/api/me", account.me, "me"),
    ("GET", "/api/tokens", account.list_tokens, "tokens"),
    ("POST", "/api/tokens", account.create_token, "tokens_create"),
    ("DELETE", "/api/tokens/{id}", account.revoke_token, "token_revoke"),

    ("GET", "/api/models", agents.models, "models"),
    ("GET", "/api/agents", agents.list_agents, "agents"),
    ("POST", "/api/agents", agents.create_agent, "agents_create"),
    ("GET", "/api/agents/{id}", agents.get_agent, "agent"),
    ("PATCH", "/api/agents/{id}", agents.update_agent, "agent_update"),
    ("DELETE", "/api/agents/{id}", agents.delete_agent, "agent_delete"),
    ("GET", "/api/threads", threads.list_threads, "threads"),
    ("POST", "/api/threads", threads.create_thread, "threads_create"),
    ("GET", "/api/threads/{id}", threads.get_thread, "thread"),
    ("PATCH", "/api/threads/{id}", threads.update_thread, "thread_rename"),
    ("DELETE", "/api/threads/{id}", threads.delete_thread, "thread_delete"),
    ("POST", "/api/threads/{id}/messages", threads.post_message, "thread_message"),
    ("GET", "/api/threads/{id}/stream", sse.thread_stream, "thread_stream"),
    ("POST", "/api/threads/{id}/regenerate", conversation.regenerate, "thread_regenerate"),
    ("POST", "/api/threads/{id}/messages/{message_id}/edit", conversation.edit_message, "message_edit"),
    ("GET", "/api/search", search.search, "search"),
    ("GET", "/api/workflows", workflows.list_workflows, "workflows"),
    ("POST", "/api/workflows", workflows.create_workflow, "workflows_create"),
    ("GET", "/api/workflows/{id}", workflows.get_workflow, "workflow"),
    ("PATCH", "/api/workflows/{id}", workflows.update_workflow, "workflow_update"),
    ("DELETE", "/api/workflows/{id}", workflows.delete_workflow, "workflow_delete"),
    ("POST", "/api/workflows/{id}/runs", workflows.start_run, "workflow_run"),
    ("GET", "/api/runs", runs.list_runs, "runs"),
    ("GET", "/api/runs/{id}", runs.get_run, "run"),
    ("POST", "/api/runs/{id}/cancel", runs.cancel_run, "run_cancel"),
    ("POST", "/api/runs/{id}/resume", runs.resume_run, "run_resume"),
    ("GET", "/api/runs/{id}/stream", sse.run_stream, "run_stream"),
    ("GET", "/api/usage", runs.usage, "usage"),
    ("GET", "/api/admin/usage", runs.admin_usage, "admin_usage"),

    ("GET", "/api/openapi-compat.json", meta.openapi_compat, "openapi_compat"),
    # The OpenAI-compatible endpoint (docs/protocols.md; contracts/openapi-compat.yaml).
    ("GET", "/v1/models", compat_openai.models, "openai_models"),
    ("POST", "/v1/chat/completions", compat_openai.chat_completions, "openai_chat_completions"),

    # The LangGraph API (Agent Protocol subset): the same services (docs/protocols.md).
    ("GET", "/lg/info", compat_langgraph.info, "lg_info"),
    ("POST", "/lg/assistants/search", compat_langgraph.search_assistants, "lg_assistants_search"),
    ("GET", "/lg/assistants/{assistant_id}", compat_langgraph.get_assistant, "lg_assistant"),
    ("GET", "/lg/assistants/{assistant_id}/graph", compat_langgraph.assistant_graph, "lg_assistant_graph"),
    ("GET", "/lg/assistants/{assistant_id}/schemas", compat_langgraph.assistant_schemas, "lg_assistant_schemas"),
    ("POST", "/lg/assistants", compat_langgraph.not_supported, "lg_assistants_create"),
    ("POST", "/lg/threads", compat_langgraph.create_thread, "lg_threads_create"),
    ("POST", "/lg/threads/search", compat_langgraph.search_threads, "lg_threads_search"),
    ("GET", "/lg/threads/{thread_id}", compat_langgraph.get_thread, "lg_thread"),
    ("PATCH", "/lg/threads/{thread_id}", compat_langgraph.update_thread, "lg_thread_update"),
    ("DELETE", "/lg/threads/{thread_id}", compat_langgraph.delete_thread, "lg_thread_delete"),
    ("GET", "/lg/threads/{thread_id}/state", compat_langgraph.thread_state, "lg_thread_state"),
    ("GET", "/lg/threads/{thread_id}/state/{checkpoint_id}", compat_langgraph.thread_state, "lg_thread_state_at"),
    ("POST", "/lg/threads/{thread_id}/state", compat_langgraph.not_supported, "lg_thread_state_update"),
    ("POST", "/lg/threads/{thread_id}/history", compat_langgraph.thread_history, "lg_thread_history"),
    ("POST", "/lg/threads/{thread_id}/runs", compat_langgraph_runs.create_run, "lg_runs_create"),
    ("GET", "/lg/threads/{thread_id}/runs", compat_langgraph_runs.list_runs, "lg_runs"),
    ("POST", "/lg/threads/{thread_id}/runs/stream", compat_langgraph_runs.stream_run, "lg_runs_stream"),
    ("POST", "/lg/threads/{thread_id}/runs/wait", compat_langgraph_runs.wait_run, "lg_runs_wait"),
    ("GET", "/lg/threads/{thread_id}/runs/{run_id}", compat_langgraph_runs.get_run, "lg_run"),
    ("POST", "/lg/threads/{thread_id}/runs/{run_id}/cancel", compat_langgraph_runs.cancel_run, "lg_run_cancel"),
    ("GET", "/lg/threads/{thread_id}/runs/{run_id}/join", compat_langgraph_runs.join_run, "lg_run_join"),
    ("GET", "/lg/threads/{thread_id}/runs/{run_id}/stream", compat_langgraph_runs.join_stream, "lg_run_stream"),
    ("POST", "/lg/runs", compat_langgraph_runs.create_run, "lg_stateless_runs_create"),
    ("POST", "/lg/runs/stream", compat_langgraph_runs.stream_run, "lg_stateless_runs_stream"),
    ("POST", "/lg/runs/wait", compat_langgraph_runs.wait_run, "lg_stateless_runs_wait"),

    ("POST", "/mcp", mcp.mcp, "mcp"),
    ("GET", "/api/tools", agents.tools, "tools"),
    ("GET", "/api/admin/mcp-servers", mcp_admin.list_servers, "admin_mcp_servers"),
    ("POST", "/api/admin/mcp-servers/{name}/refresh", mcp_admin.refresh_server, "admin_mcp_server_refresh"),

    ("GET", "/api/admin/health", health.admin_health, "admin_health"),
    ("GET", "/api/admin/users", admin.list_users, "admin_users"),
    ("PATCH", "/api/admin/users/{id}", admin.update_user, "admin_user_update"),
    ("GET", "/api/admin/users/{id}/identities", admin.list_identities, "admin_user_identities"),
    # {subject:.+}: a provider's subject may hold a "/" (sent as %2F)
    ("DELETE", "/api/admin/users/{id}/identities/{provider}/{subject:.+}", admin.unlink_identity, "admin_user_identity_unlink"),
    ("GET", "/api/admin/audit", admin.audit, "admin_audit"),
]


def setup(app: web.Application) -> None:
    for method, path, handler, name in ROUTES:
        if method == "GET":    # add_get also answers HEAD, as the routes always have
            app.router.add_get(path, handler, name=name)
        else:
            app.router.add_route(method, path, handler, name=name)

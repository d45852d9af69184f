"""Typed application keys, all in one place."""

from __future__ import annotations

import weakref

from aiohttp import web

from .buildinfo import BuildInfo
from .logs import AccessLog
from .metrics import Metrics
from .auth.access import Principal
from .auth.ratelimit import RateLimiter
from .agents.mcp_tools import McpTools
from .bus.bus import Bus
from .bus.topics import Authorizer
from .runner.runner import Runner
from .services.agents import AgentService
from .services.compat_langgraph import LangGraphService
from .services.compat_openai import OpenAIService
from .services.idempotency import IdempotencyKeys
from .services.mcp_endpoint import McpEndpoint
from .services.identity import Identity
from .services.runs import RunService
from .services.system import SystemService
from .services.conversation import ConversationService
from .services.search import SearchService
from .services.threads import ThreadService
from .services.workflows import WorkflowService
from .settings import Settings
from .store.db import Database
from .tracing import Tracing

SETTINGS = web.AppKey("settings", Settings)
ACCESS_LOG = web.AppKey("access_log", AccessLog)
DB = web.AppKey("db", Database)
METRICS = web.AppKey("metrics", Metrics)
BUILD = web.AppKey("build", BuildInfo)
STARTED_AT = web.AppKey("started_at", float)
OPENAPI = web.AppKey("openapi", dict)
FIRST_PAGE = web.AppKey("first_page", object)   # http.first_page.FirstPage, when AGENTSTEAD_FRONTEND_DIR is set
OPENAPI_COMPAT = web.AppKey("openapi_compat", dict)   # contracts/openapi-compat.yaml (/v1, /lg)
WEBSOCKETS = web.AppKey("websockets", weakref.WeakSet)
IDENTITY = web.AppKey("identity", Identity)
BUS = web.AppKey("bus", Bus)
TOPICS = web.AppKey("topics", Authorizer)
RUNNER = web.AppKey("runner", Runner)
AGENTS = web.AppKey("agents", AgentService)
THREADS = web.AppKey("threads", ThreadService)
SEARCH = web.AppKey("search", SearchService)
CONVERSATION = web.AppKey("conversation", ConversationService)
RUNS = web.AppKey("runs", RunService)
OPENAI = web.AppKey("openai", OpenAIService)
LANGGRAPH = web.AppKey("langgraph", LangGraphService)
WORKFLOWS = web.AppKey("workflows", WorkflowService)
SYSTEM = web.AppKey("system", SystemService)
MCP = web.AppKey("mcp", McpTools)
MCP_ENDPOINT = web.AppKey("mcp_endpoint", McpEndpoint)
IDEMPOTENCY = web.AppKey("idempotency", IdempotencyKeys)
RATE_AUTH = web.AppKey("rate_auth", RateLimiter)
RATE_API = web.AppKey("rate_api", RateLimiter)
TRACING = web.AppKey("tracing", Tracing)
IDEMPOTENCY_IN_FLIGHT = web.AppKey("idempotency_in_flight", set)   # (user, key) being handled

PRINCIPAL = web.RequestKey("principal", Principal)

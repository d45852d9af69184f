"""The agent as a LangGraph graph: a model node and a tools node in a loop.

The model is langchain-openai's ChatOpenAI with a lean stream parser
(model_client.py) against any OpenAI-compatible endpoint; the tools node runs
our registry's tools (with their limits) and pauses the graph for `ask_human`
with LangGraph's `interrupt`.
"""

from __future__ import annotations

import functools
from typing import Awaitable, Callable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, SystemMessage, ToolMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from ..agents.mcp_tools import as_tool, is_mcp
from ..agents.tools import REGISTRY, Tool
from .context import estimate, fit, schemas_tokens
from .model_client import REPLY, YIELD, LeanChatOpenAI, YieldWhileStreaming, content_text  # noqa: F401 (re-exported)
from .model_transport import http_client

ExecuteTool = Callable[[dict], Awaitable[ToolMessage]]


@functools.lru_cache(maxsize=64)
def chat_model(*, base_url: str, api_key: str, model: str, temperature: float, max_retries: int,
               timeout: float) -> LeanChatOpenAI:
    """One client per distinct configuration, reused by every run that needs it: building
    one (the openai SDK client and its pydantic models) costs ~3.6 ms of CPU here, more
    than the rest of a short run's bookkeeping. A ChatOpenAI holds no per-call state."""
    # The openai SDK retries 429/5xx/connection errors with backoff and honours Retry-After.
    # stream_chunk_timeout=None: langchain-openai's per-chunk timeout wraps every chunk in
    # asyncio.wait_for, which on Python 3.11 returns the chunk and drops a cancel that
    # arrives with it; about one cancel in ten of a fast stream was lost and the reply ran
    # to its end. A stalled stream still ends: httpx's read timeout (`timeout`, between
    # bytes: llm_timeout_seconds) and the run's time limit (run_timeout_seconds) bound it.
    # No YieldWhileStreaming callback: LeanChatOpenAI asks YIELD itself, without LangChain's
    # dispatch of one more handler per token. The SDK's requests go over aiohttp (model_transport.py).
    return LeanChatOpenAI(base_url=base_url, api_key=api_key or "not-needed", model=model,
                          temperature=temperature, streaming=True, stream_usage=True, max_retries=max_retries,
                          timeout=timeout, stream_chunk_timeout=None, http_async_client=http_client())


def for_version(version, provider: dict, *, max_retries: int, timeout: float, execute_tool: ExecuteTool,
                checkpointer, context_tokens: int | None, leave_out: frozenset[str] = frozenset()):
    """An agent version's graph on a provider: its model, instructions and tools (less
    `leave_out`), sending at most `context_tokens` (context.py). Built once per version by
    the callers, who keep it (runner, workflow runs)."""
    llm = chat_model(base_url=provider["base_url"], api_key=provider["api_key"], model=version.model,
                     temperature=version.temperature, max_retries=max_retries, timeout=timeout)
    # MCP tools as the version recorded them (description and schema), not as the server says now.
    tools = [REGISTRY[n] if n in REGISTRY else as_tool(n, version.tool_schemas[n]) for n in version.tools
             if (n in REGISTRY or (is_mcp(n) and n in version.tool_schemas)) and n not in leave_out]
    return build(llm=llm, instructions=version.instructions, tools=tools, execute_tool=execute_tool,
                 checkpointer=checkpointer, context_tokens=context_tokens)


def version_key(version, provider: dict) -> tuple:
    """What a cached graph depends on."""
    return (version.agent_id, version.version, version.model, provider["name"], provider["base_url"],
            provider["api_key"])


def build(*, llm: BaseChatModel, instructions: str, tools: list[Tool], execute_tool: ExecuteTool, checkpointer,
          context_tokens: int | None = None):
    """`context_tokens`: the prompt budget; each model call sends the instructions, the tools
    and the newest messages that fit (context.py). None sends every message."""
    schemas = [t.openai_schema() for t in tools]
    bound = llm.bind_tools(schemas) if tools else llm
    fixed = (estimate(instructions) if instructions else 0) + schemas_tokens(schemas)

    async def agent(state: MessagesState) -> dict:
        history = state["messages"] if context_tokens is None else fit(state["messages"], context_tokens - fixed)
        prompt = ([SystemMessage(instructions)] if instructions else []) + history
        reply = await bound.ainvoke(prompt)
        return {"messages": [reply]}

    async def run_tools(state: MessagesState) -> dict:
        last = state["messages"][-1]
        return {"messages": [await execute_tool(call) for call in last.tool_calls]}

    def route(state: MessagesState) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    def enter(state: MessagesState) -> str:
        """A run rebuilt from its stored messages after a crash may stop at tool calls
        that still need their results; anything else starts with the model."""
        last = state["messages"][-1] if state["messages"] else None
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else "agent"

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", run_tools)
    graph.add_conditional_edges(START, enter, ["agent", "tools"])
    graph.add_conditional_edges("agent", route, ["tools", END])
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=checkpointer)

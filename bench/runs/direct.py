"""The baseline of bench/runs: the agent's LangGraph graph called directly (runner/graph.py,
langchain-openai, streaming, no checkpointer, no tools), as a script would. Used by
bench/runs/run.py in its own process ("D", and "D0" on a ChatOpenAI with langchain-openai's
defaults) and by bench/ws/server.py's /bench/direct route in the server's process ("Ds")."""

from __future__ import annotations

import time

from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_openai import ChatOpenAI

from agentstead.runner import graph as graphs


def graph_on(llm):
    """The agent's graph (runner/graph.py build: no instructions, no tools) on a model client."""
    return graphs.build(llm=llm, instructions="", tools=[], execute_tool=None, checkpointer=None)


def direct_graph(base_url: str, api_key: str, model: str):
    """On the runner's model client (runner/graph.py chat_model)."""
    return graph_on(graphs.chat_model(base_url=base_url, api_key=api_key, model=model, temperature=0.7,
                                      max_retries=4, timeout=120.0))


def default_model(base_url: str, api_key: str, model: str, **settings) -> ChatOpenAI:
    """The ChatOpenAI a script would write: langchain-openai's defaults, so its per-chunk
    timeout (an asyncio.wait_for per chunk) is on and the runner's YieldWhileStreaming is
    not there (runner/graph.py says why the runner differs); `settings` change that."""
    return ChatOpenAI(base_url=base_url, api_key=api_key, model=model, temperature=0.7, streaming=True,
                      stream_usage=True, max_retries=4, timeout=120.0, **settings)


def default_graph(base_url: str, api_key: str, model: str):
    return graph_on(default_model(base_url, api_key, model))


async def direct_run(graph, callbacks: list | None = None) -> dict:
    """One call, as the runner streams it; its ms and the number of text chunks. `callbacks`
    go into the config as a traced chat run's do (bench/runs/tracing.py)."""
    t0 = time.perf_counter()
    deltas = 0
    config = {"recursion_limit": 21, **({"callbacks": callbacks} if callbacks else {})}
    async for mode, chunk in graph.astream({"messages": [HumanMessage("hello")]}, config,
                                           stream_mode=["messages", "updates"]):
        if mode == "messages":
            piece, meta = chunk
            if isinstance(piece, AIMessageChunk) and meta.get("langgraph_node") == "agent" and piece.content:
                deltas += 1
    return {"ms": (time.perf_counter() - t0) * 1000, "deltas": deltas}

"""The graph module LangGraph Server runs in bench/compat/langgraph_server.py: Agentstead's
own agent graph, from the source of src/agentstead/runner/graph.py, runner/context.py and
runner/model_client.py.

LangGraph Server's venv has LangGraph and langchain-openai (at requirements.txt's versions)
but not Agentstead, whose import chain (tools, MCP, aiohttp) does not belong there. So the
module is written from Agentstead's source: every top-level statement of runner/graph.py
except its imports from Agentstead (tools, MCP) and the two functions that use them
(`for_version`, `version_key`), and runner/context.py and runner/model_client.py (the
model client, LeanChatOpenAI) copied beside it. The graph is then
`build(llm=chat_model(...), ...)` with what the runner passes for an agent with Agentstead's
defaults (no instructions, no tools, temperature 0.7, the default prompt budget, retries and
timeout): the same nodes, edges, ChatOpenAI settings (streaming, stream_usage, no per-chunk
timeout) and model client (LeanChatOpenAI, which gives the loop its turns) as a chat run. Nothing here imports
LangGraph: tests/unit/test_bench_langgraph_server.py imports the written module in the
main venv and checks it.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "src" / "agentstead" / "runner"
LEFT_OUT = {"for_version", "version_key"}   # they need Agentstead's tool registry
CONTEXT_MODULE = "agentstead_context"
COPIED = {"context": CONTEXT_MODULE, "model_client": "agentstead_model_client"}   # runner module -> its copy


def variable(model: str) -> str:
    """The module attribute holding `model`'s graph (tok-1 -> tok_1)."""
    return re.sub(r"\W", "_", model)


def graph_source(graph_py: str) -> str:
    """runner/graph.py without its imports from Agentstead and what only they serve."""
    tree, lines = ast.parse(graph_py), graph_py.splitlines()

    def segment(node: ast.stmt) -> str:   # with its decorators (ast.get_source_segment leaves them out)
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return "\n".join(lines[first - 1:node.end_lineno])
    imports: list[str] = []
    kept: list[str] = ["Tool = object   # agents/tools.py: Tool (only in annotations here)"]
    for node in tree.body[1:] if ast.get_docstring(tree) else tree.body:
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            if node.module in COPIED:      # .context, .model_client -> the copies beside this module
                imports.append(f"from {COPIED[node.module]} import {', '.join(a.name for a in node.names)}")
            elif node.module == "model_transport":   # aiohttp is not in LangGraph Server's venv: the SDK's httpx2
                kept.append("def http_client():   # runner/model_transport.py: not in LangGraph Server's venv\n"
                            "    return None      # (no aiohttp there): the openai SDK's own httpx2 client")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(segment(node))
        elif not (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in LEFT_OUT):
            kept.append(segment(node))
    return "\n".join(imports) + "\n\n\n" + "\n\n\n".join(kept)


def module_source(*, base_url: str, api_key: str, models: list[str], context_tokens: int, max_retries: int,
                  timeout: float, temperature: float) -> str:
    """The graph module: runner/graph.py's code and one compiled graph per model."""
    body = graph_source((RUNNER / "graph.py").read_text())
    graphs = "\n".join(f"{variable(m)} = _agent({json.dumps(m)})" for m in models)
    return f'''# Written by bench/compat/langgraph_server.py from src/agentstead/runner/graph.py: do not edit.
{body}


def _agent(model: str):
    """What the runner builds for an agent with Agentstead's defaults (runner/graph.py: for_version)."""
    llm = chat_model(base_url={base_url!r}, api_key={api_key!r}, model=model, temperature={temperature!r},
                     max_retries={max_retries!r}, timeout={timeout!r})
    return build(llm=llm, instructions="", tools=[], execute_tool=None, checkpointer=None,
                 context_tokens={context_tokens!r})


{graphs}
'''


def write(directory: Path, *, models: list[str], **settings) -> dict:
    """The graph module, runner/context.py's copy and langgraph.json in `directory`; the
    graphs' map (graph id -> module:attribute) as langgraph.json has it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bench_graph.py").write_text(module_source(models=models, **settings))
    for name, copy in COPIED.items():
        (directory / f"{copy}.py").write_text((RUNNER / f"{name}.py").read_text())
    graphs = {m: f"./bench_graph.py:{variable(m)}" for m in models}
    (directory / "langgraph.json").write_text(json.dumps({"dependencies": ["."], "graphs": graphs}, indent=2))
    return graphs

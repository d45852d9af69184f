"""bench/compat/langgraph_server.py stays runnable without its venv in CI: its lock is
hashed, names no address and pins the graph's libraries at the runtime lock's versions; the
graph module it writes for LangGraph Server is Agentstead's agent graph and answers like it
(run here in the main venv, against the tests' OpenAI-compatible server)."""

from __future__ import annotations

import importlib.util
import inspect
import json
import pathlib
import sys

import pytest
from langchain_core.messages import HumanMessage
from packaging.requirements import Requirement

from agentstead.runner import graph as runner_graph

from ..support import locks
from ..support.llm_server import LLMServer, Turn

ROOT = pathlib.Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "compat"
sys.path.insert(0, str(BENCH))
import lg_graph  # noqa: E402

LOCK = BENCH / "langgraph-server.txt"
SAME_AS_RUNTIME = ("langgraph", "langgraph-checkpoint", "langgraph-sdk", "langchain-core", "langchain-openai",
                   "openai", "httpx")


def pins(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            req = Requirement(line.split(" \\")[0])
            out[req.name.lower()] = str(req.specifier).removeprefix("==")
    return out


def test_the_lock_is_hashed_names_no_address_and_keeps_the_runtime_versions():
    text = LOCK.read_text()
    assert "://" not in text and "index-url" not in text and "find-links" not in text
    entries = [e for e in text.split("\n") if e and not e[0].isspace() and not e.startswith("#")]
    assert len(entries) > 50 and all(e.endswith(" \\") for e in entries), "an entry without hashes"
    for entry in text.split("\n")[:-1]:
        if entry.endswith(" \\") and not entry.startswith(" "):   # the line after a requirement is its hash
            following = text.split(entry + "\n", 1)[1]
            assert following.startswith("    --hash=sha256:"), f"{entry} has no hash"
    locked, wanted = pins(text), pins((BENCH / "langgraph-server.in").read_text())
    assert {n: locked.get(n) for n in wanted} == wanted   # the .in's pins are what the lock holds
    runtime = locks.runtime_pins()
    assert {n: locked[n] for n in SAME_AS_RUNTIME} == {n: runtime[n] for n in SAME_AS_RUNTIME}
    requirements = "\n".join((ROOT / f).read_text() for f in ("requirements.txt", "requirements-dev.txt"))
    assert "langgraph-api" not in requirements and "langgraph-cli" not in requirements


@pytest.fixture
def written(tmp_path):
    """The module langgraph_server.py writes, imported here (and forgotten afterwards)."""
    def write(base_url: str, models: list[str]):
        graphs = lg_graph.write(tmp_path, models=models, base_url=base_url, api_key="sk-test", temperature=0.7,
                                context_tokens=16_000, max_retries=0, timeout=10.0)
        sys.path.insert(0, str(tmp_path))
        spec = importlib.util.spec_from_file_location("bench_graph", tmp_path / "bench_graph.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_graph"] = module   # inspect.getsource finds a class's file through it
        spec.loader.exec_module(module)
        return module, graphs
    yield write
    sys.path.remove(str(tmp_path))
    for copy in lg_graph.COPIED.values():
        sys.modules.pop(copy, None)
    sys.modules.pop("bench_graph", None)


def test_the_written_graph_is_the_runners_code_and_langgraph_json_names_it(written, tmp_path):
    module, graphs = written("http://127.0.0.1:9/v1", ["tok-1", "tok-200"])
    assert graphs == json.loads((tmp_path / "langgraph.json").read_text())["graphs"]
    for graph_id, target in graphs.items():
        compiled = getattr(module, target.rsplit(":", 1)[1])
        assert set(compiled.get_graph().nodes) == {"__start__", "agent", "tools", "__end__"}
    for name in ("build", "chat_model", "LeanChatOpenAI", "YieldWhileStreaming", "content_text"):
        assert inspect.getsource(getattr(module, name)) == inspect.getsource(getattr(runner_graph, name))
    llm = module.chat_model(base_url="http://127.0.0.1:9/v1", api_key="sk-test", model="tok-1", temperature=0.7,
                            max_retries=0, timeout=10.0)
    assert (llm.streaming, llm.stream_usage, llm.stream_chunk_timeout, llm.model_name) == (True, True, None, "tok-1")
    assert type(llm).__name__ == "LeanChatOpenAI" and not llm.callbacks   # the loop's turns asked inline
    text = (tmp_path / "bench_graph.py").read_text()
    assert "for_version" not in vars(module) and "from ." not in text and "from agentstead." not in text


async def test_the_written_graph_answers_as_the_runners_graph_does(written):
    llm = LLMServer(api_key="sk-test", models=("tok-3",), tokens_per_second=0)
    llm.script = lambda body: Turn("w0 w1 w2")
    await llm.start()
    try:
        module, _ = written(llm.base_url, ["tok-3"])
        ours = runner_graph.build(llm=runner_graph.chat_model(
            base_url=llm.base_url, api_key="sk-test", model="tok-3", temperature=0.7, max_retries=0, timeout=10.0),
            instructions="", tools=[], execute_tool=None, checkpointer=None, context_tokens=16_000)
        got = []
        for graph in (module.tok_3, ours):
            chunks = [c async for c in graph.astream({"messages": [HumanMessage("hello")]},
                                                     stream_mode=["messages", "updates"])]
            got.append(([m for m, _ in chunks], "".join(c[1][0].content for c in chunks if c[0] == "messages")))
        assert got[0] == got[1] and got[0][1] == "w0 w1 w2"
        assert [r["model"] for r in llm.requests] == ["tok-3", "tok-3"]
    finally:
        await llm.stop()

"""The run's reply text as LeanChatOpenAI hands it to model_client.REPLY (no LangChain callback per
token), through the runner's own graph against the tests' LLM server over HTTP: the agent node's
text in order, before and after a tool call; nothing of a model called inside a tool, nor of a
model called outside a graph."""

from __future__ import annotations

from langchain_core.messages import HumanMessage, ToolMessage

from agentstead.agents.tools import REGISTRY
from agentstead.runner import graph as graphs

from ..support.llm_server import LLMServer, ToolCall, Turn


async def test_only_the_agent_nodes_text_is_the_reply():
    llm = LLMServer("sk-test", ["gpt-test"], tokens_per_second=0)
    await llm.start()
    try:
        model = graphs.chat_model(base_url=llm.base_url, api_key="sk-test", model="gpt-test", temperature=0.0,
                                  max_retries=0, timeout=10.0)

        async def execute_tool(call: dict) -> ToolMessage:      # a tool that calls a model of its own
            inner = await model.ainvoke([HumanMessage("inner")])
            return ToolMessage(content=inner.content, tool_call_id=call["id"])
        graph = graphs.build(llm=model, instructions="", tools=[REGISTRY["calculator"]], execute_tool=execute_tool,
                             checkpointer=None)
        llm.script = [Turn("Let me compute.", tool_calls=[ToolCall("calculator", {"expression": "6*7"}, id="c1")]),
                      Turn("tool chatter"), Turn("It is 42.")]
        got: list[str] = []
        token = graphs.REPLY.set(got.append)
        try:
            result = await graph.ainvoke({"messages": [HumanMessage("what is 6*7?")]})
            await model.ainvoke([HumanMessage("outside a graph")])   # no turn left: the server's default
        finally:
            graphs.REPLY.reset(token)
        assert "".join(got) == "Let me compute.It is 42."
        assert got[:3] == ["Let", " me", " compute."]                  # a piece per token, in order
        assert result["messages"][2].content == "tool chatter" and result["messages"][-1].content == "It is 42."
    finally:
        await llm.stop()

"""runner/graph.py's ReplyText: the run's deltas get the text the agent node's model streams,
nothing of a model called elsewhere (a tool's own), in order, list contents as their text."""

import uuid

from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from agentstead.runner.graph import ReplyText


async def test_only_the_agent_nodes_model_calls_are_the_reply():
    got: list[str] = []
    reply = ReplyText(got.append)
    agent, tool = uuid.uuid4(), uuid.uuid4()
    await reply.on_chat_model_start({}, [], run_id=agent, metadata={"langgraph_node": "agent"})
    await reply.on_chat_model_start({}, [], run_id=tool, metadata={"langgraph_node": "tools"})
    for run_id, text in ((agent, "It is "), (tool, "tool chatter"), (agent, ""), (agent, "42.")):
        await reply.on_llm_new_token(text, chunk=ChatGenerationChunk(message=AIMessageChunk(content=text)),
                                     run_id=run_id)
    parts = [{"type": "text", "text": "Parts "}, {"type": "text", "text": "joined."}]
    await reply.on_llm_new_token("", chunk=ChatGenerationChunk(message=AIMessageChunk(content=parts)), run_id=agent)
    await reply.on_llm_new_token("bare", run_id=agent)                 # a token without its chunk
    await reply.on_llm_new_token("unknown call", run_id=uuid.uuid4())  # a call it never saw start
    assert got == ["It is ", "42.", "Parts joined.", "bare"]

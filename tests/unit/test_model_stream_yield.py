"""runner/model_client.py's YieldWhileStreaming: a model stream that keeps the event loop busy gives it
a turn; one that waits for its socket between tokens never sleeps on its account."""

import asyncio
import time

from agentstead.runner.graph import chat_model
from agentstead.runner.model_client import LeanChatOpenAI, YieldWhileStreaming


async def test_tokens_parsed_back_to_back_give_the_loop_a_turn():
    handler = YieldWhileStreaming()
    waiting = []
    asyncio.get_running_loop().call_soon(waiting.append, "ran")
    give_up = time.perf_counter() + 5
    tokens = 0
    while not waiting and time.perf_counter() < give_up:   # never awaits anything of its own
        await handler.on_llm_new_token("x")
        tokens += 1
    assert waiting == ["ran"] and handler.yields == 1
    assert tokens > 1        # not at the first token: only once the loop went YIELD_EVERY without a turn


async def test_a_stream_that_waits_for_its_socket_never_sleeps_here():
    handler = YieldWhileStreaming()
    end = time.perf_counter() + 5 * handler.YIELD_EVERY
    while time.perf_counter() < end:
        await handler.on_llm_new_token("x")
        await asyncio.sleep(0)                          # the loop has its turn between tokens
    assert handler.yields == 0


def test_every_model_client_of_the_runner_asks_it_itself():
    """The runner's client is the lean one, which asks YIELD per chunk (tests/integration/
    test_model_client.py streams through it); a callback per token would cost LangChain's
    dispatch on top."""
    llm = chat_model(base_url="http://127.0.0.1:9/v1", api_key="k", model="m", temperature=0.0,
                     max_retries=0, timeout=1.0)
    assert isinstance(llm, LeanChatOpenAI) and not llm.callbacks
    assert llm.stream_chunk_timeout is None              # see chat_model: wait_for could drop a cancel

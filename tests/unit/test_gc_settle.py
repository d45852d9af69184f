"""server.py: once the server listens, start-up's objects are frozen and the configured
collection thresholds are set (AGENTSTEAD_GC_THRESHOLDS; docs/operations.md)."""

import asyncio
import gc

import pytest

from agentstead import server
from agentstead.settings import load


@pytest.fixture
def restore_gc():
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


async def test_a_started_server_has_frozen_its_start_up_and_set_the_thresholds(tmp_path, restore_gc, unused_tcp_port):
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    settings = load({"AGENTSTEAD_STATE_DIR": str(tmp_path), "AGENTSTEAD_PORT": str(unused_tcp_port),
                     "AGENTSTEAD_GC_THRESHOLDS": "12345,6,7"})
    serving = asyncio.create_task(server.serve(settings))
    try:
        async with asyncio.timeout(30):
            while gc.get_threshold() != (12345, 6, 7):
                assert not serving.done(), serving.exception()
                await asyncio.sleep(0.05)
        assert gc.get_freeze_count() > 10_000        # the app, its modules, LangChain's classes
        reader, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)   # and it listens
        writer.close()
    finally:
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving


def test_no_thresholds_leave_the_collector_as_python_set_it(restore_gc):
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    server.settle_heap(())
    assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0

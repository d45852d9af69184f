"""Traces of every run (tracing.py, http/tracing.py, runner/traced.py): the real app sends
its spans over OTLP/HTTP to a real receiver (tests/support/otlp_receiver.py) while a chat
run talks to the tests' OpenAI-compatible server: the tree request → run → model calls and
tool call, their GenAI attributes, failures, and what happens with tracing off or with an
endpoint that does not answer."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from agentstead.keys import RUNNER, TRACING

from ..support.llm_server import Fault, ToolCall, Turn
from ..support.otlp_receiver import OTLPReceiver
from ..support.procs import free_port
from .test_runs import agent_and_thread, chat, llm, settle  # noqa: F401  (fixtures)

SECRET_PROMPT = "what is 6 times 7, zebra-quartz"
SECRET_REPLY = "It is 42, zebra-quartz."


@pytest.fixture
async def otlp():
    async with OTLPReceiver() as receiver:
        yield receiver


def exporter_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("OtelBatch")]


async def post_message(client, headers, thread_id: str, content: str, **extra_headers) -> tuple[dict, str]:
    resp = await client.post(f"/api/threads/{thread_id}/messages", json={"content": content},
                             headers={**headers, **extra_headers})
    assert resp.status == 202, await resp.text()
    return await resp.json(), resp.headers["X-Request-ID"]


def values(spans) -> list:
    """Every attribute value of every span, flattened (for the privacy check)."""
    out = []
    for s in spans:
        for v in list(s.attributes.values()) + [a for _, attrs in s.events for a in attrs.values()]:
            out.extend(v if isinstance(v, list) else [v])
    return out


async def test_a_chat_run_with_a_tool_call_is_one_trace(chat, llm, otlp):  # noqa: F811
    client, headers = await chat(tracing_endpoint=otlp.endpoint)
    agent, thread = await agent_and_thread(client, headers, tools=["calculator"])
    llm.script = [Turn(tool_calls=[ToolCall("calculator", {"expression": "6 * 7"})]), Turn(SECRET_REPLY)]
    submitted, request_id = await post_message(client, headers, thread["id"], SECRET_PROMPT)
    run = await settle(client, headers, submitted["id"])
    assert run["status"] == "succeeded", run
    assert await client.app[TRACING].flush()
    spans = await otlp.wait_for(lambda spans: any(s.name == "run chat" for s in spans))

    # The request: a server span named by its route, with the status and the access log's request id.
    post = otlp.named("POST /api/threads/{id}/messages")
    assert len(post) == 1, [s.name for s in spans]
    post = post[0]
    assert post.kind == "server" and post.parent_id == ""
    assert post.attributes["http.route"] == "/api/threads/{id}/messages"
    assert post.attributes["http.response.status_code"] == 202
    assert post.attributes["agentstead.request_id"] == request_id
    assert not any(run["id"] in s.name or thread["id"] in s.name for s in spans)   # ids never name a span
    assert otlp.named("GET /api/runs/{id}"), "the polling requests are traced too"
    assert post.resource["service.name"] == "agentstead" and post.resource["service.version"]

    # The run: a child of that request, in the same trace, ending after it.
    (run_span,) = otlp.named("run chat")
    assert (run_span.trace_id, run_span.parent_id) == (post.trace_id, post.span_id)
    assert run_span.end_ns > post.end_ns
    assert run_span.attributes["agentstead.run.id"] == run["id"]
    assert run_span.attributes["agentstead.run.kind"] == "chat"
    assert run_span.attributes["gen_ai.agent.id"] == agent["id"]
    assert run_span.attributes["gen_ai.conversation.id"] == thread["id"]
    assert run_span.attributes["agentstead.run.status"] == "succeeded"
    assert run_span.status == "unset"

    # Two model calls and the tool call between them, children of the run.
    calls = sorted(otlp.named("chat gpt-test"), key=lambda s: s.start_ns)
    (tool,) = otlp.named("execute_tool calculator")
    assert len(calls) == 2
    for span in (*calls, tool):
        assert (span.trace_id, span.parent_id) == (run_span.trace_id, run_span.span_id)
    assert calls[0].end_ns <= tool.start_ns and tool.end_ns <= calls[1].start_ns
    for span, finish in zip(calls, ("tool_calls", "stop")):
        a = span.attributes
        assert span.kind == "client" and span.status == "unset"
        assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
        assert a["gen_ai.request.model"] == "gpt-test" and a["gen_ai.response.model"] == "gpt-test"
        assert a["gen_ai.response.finish_reasons"] == [finish]
        assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
        assert 0 < a["gen_ai.response.time_to_first_chunk"] <= span.seconds
        assert [name for name, _ in span.events] == ["gen_ai.first_token"]
    assert sum(s.attributes["gen_ai.usage.input_tokens"] for s in calls) == run["prompt_tokens"]
    assert sum(s.attributes["gen_ai.usage.output_tokens"] for s in calls) == run["completion_tokens"]
    assert calls[0].attributes["agentstead.tool_calls"] == 1
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "calculator"
    assert tool.attributes["gen_ai.tool.call.id"] == llm.requests[1]["messages"][-1]["tool_call_id"]
    assert tool.attributes["agentstead.tool.ok"] is True and tool.status == "unset"

    # Privacy: no prompt, reply, tool argument or tool output in any span.
    text = " ".join(str(v) for v in values(spans))
    assert "zebra" not in text and "6 * 7" not in text and "It is" not in text


async def test_a_caller_traceparent_continues_its_trace_and_probes_are_not_traced(chat, otlp):  # noqa: F811
    client, headers = await chat(tracing_endpoint=otlp.endpoint)
    parent_trace, parent_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    resp = await client.get("/api/agents", headers={**headers, "traceparent": f"00-{parent_trace}-{parent_span}-01"})
    assert resp.status == 200
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/api/nothing-here/123", headers=headers)).status == 404
    assert await client.app[TRACING].flush()
    spans = await otlp.wait_for(lambda spans: otlp.named("GET /api/agents") and otlp.named("GET"))
    (agents,) = otlp.named("GET /api/agents")
    assert (agents.trace_id, agents.parent_id) == (parent_trace, parent_span)
    (unmatched,) = otlp.named("GET")   # no route: the method alone names it
    assert unmatched.attributes["http.response.status_code"] == 404 and "http.route" not in unmatched.attributes
    assert unmatched.status == "unset"   # a 4xx is the client's error, not the server's
    assert not [s for s in spans if "healthz" in s.name or s.attributes.get("url.path") == "/healthz"]


async def test_a_failing_model_call_marks_its_span_and_the_run(chat, llm, otlp):  # noqa: F811
    client, headers = await chat(tracing_endpoint=otlp.endpoint)
    _, thread = await agent_and_thread(client, headers, tools=[])
    llm.faults = [Fault("status", status=500)] * 3   # the first try and both retries (llm_max_retries=2)
    submitted, _ = await post_message(client, headers, thread["id"], "hello")
    run = await settle(client, headers, submitted["id"])
    assert run["status"] == "failed" and run["error"]["code"] == "provider_error", run
    assert len(llm.requests) == 3
    assert await client.app[TRACING].flush()
    await otlp.wait_for(lambda spans: otlp.named("run chat"))
    (run_span,) = otlp.named("run chat")
    assert run_span.status == "error" and run_span.status_message == run["error"]["message"]
    assert run_span.attributes["error.type"] == "provider_error"
    assert run_span.attributes["agentstead.run.error_code"] == "provider_error"
    assert run_span.attributes["agentstead.run.status"] == "failed"
    (call,) = otlp.named("chat gpt-test")   # one model call: the SDK's retries are inside it
    assert call.parent_id == run_span.span_id and call.status == "error"
    assert call.attributes["error.type"] == "500"   # the provider's answer
    assert call.attributes["agentstead.error_code"] == "provider_error"
    assert "gen_ai.usage.input_tokens" not in call.attributes


async def test_tracing_off_sends_nothing_and_runs_no_exporter_thread(chat, llm, otlp, monkeypatch):  # noqa: F811
    # The standard OTEL_* variables do not switch it on: only AGENTSTEAD_TRACING_ENDPOINT does.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{otlp.port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", otlp.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "10")
    before = exporter_threads()
    client, headers = await chat()
    tracing = client.app[TRACING]
    assert not tracing.enabled and tracing.provider is None and tracing.exporter is None
    assert client.app[RUNNER].traces.callbacks == []
    _, thread = await agent_and_thread(client, headers, tools=["calculator"])
    llm.script = [Turn(tool_calls=[ToolCall("calculator", {"expression": "1 + 1"})]), Turn("Two.")]
    submitted, _ = await post_message(client, headers, thread["id"], "one plus one")
    assert (await settle(client, headers, submitted["id"]))["status"] == "succeeded"
    await asyncio.sleep(0.5)   # 50 schedule delays of an exporter, had one been started
    assert otlp.requests == [] and otlp.spans == []
    assert exporter_threads() == before == []


async def test_tracing_on_runs_one_exporter_thread_and_stops_it(make_client, settings, otlp):
    client = await make_client(settings.replace(tracing_endpoint=otlp.endpoint))
    assert exporter_threads() == ["OtelBatchSpanRecordProcessor"]
    assert (await client.get("/api/me")).status == 401
    await client.raw.close()   # the app's cleanup: the exporter is flushed, then its thread ends
    assert exporter_threads() == []
    assert otlp.named("GET /api/me"), "the last spans are sent at shutdown"


@pytest.mark.parametrize("answer", ["unreachable", "not_otlp", "malformed"])
async def test_an_endpoint_that_does_not_take_spans_costs_no_request(chat, llm, otlp, caplog, answer):  # noqa: F811
    # A URL that is not one is refused at start (tests/unit/test_settings.py); one that parses
    # but cannot be used (port 99999) fails each export like an unreachable endpoint.
    endpoint = {"unreachable": f"http://127.0.0.1:{free_port()}/v1/traces", "not_otlp": otlp.endpoint,
                "malformed": "http://127.0.0.1:99999/v1/traces"}[answer]
    otlp.status = 404   # an HTTP server that is no OTLP receiver (a wrong path, say)
    client, headers = await chat(tracing_endpoint=endpoint)
    _, thread = await agent_and_thread(client, headers, tools=[])
    llm.script = [Turn("Fine.")]
    with caplog.at_level(logging.INFO, logger="agentstead.tracing"):
        submitted, _ = await post_message(client, headers, thread["id"], "hi")
        run = await settle(client, headers, submitted["id"])
        assert run["status"] == "succeeded", (run, llm.requests)
        assert (await client.get("/api/agents", headers=headers)).status == 200
        await client.app[TRACING].flush()   # the export fails (after the SDK's retries, within its timeout)
    failures = [r.getMessage() for r in caplog.records
                if r.name == "agentstead.tracing" and r.levelno == logging.WARNING]
    assert len(failures) == 1 and "could not send" in failures[0] and endpoint in failures[0], failures
    assert client.app[TRACING].exporter.failed > 0 and client.app[TRACING].exporter.exported == 0
    assert bool(otlp.requests) == (answer == "not_otlp")


async def test_a_workflow_run_traces_its_agent_step_and_tool_step(make_client, settings, llm, otlp):  # noqa: F811
    from .test_workflows import agent, save, start
    from .test_workflows import settle as settle_workflow
    from ..support.auth import token_user
    providers = ({"name": "local", "base_url": llm.base_url, "api_key_file": "", "api_key": "sk-test",
                  "models": ("gpt-test",), "default_model": "gpt-test"},)
    client = await make_client(settings.replace(llm_providers=providers, llm_max_retries=0,
                                                tracing_endpoint=otlp.endpoint))
    _, headers = await token_user(client, "ada@example.org")
    writer = await agent(client, headers, "You write.", tools=["calculator"])
    llm.script = [Turn(tool_calls=[ToolCall("calculator", {"expression": "2 + 2"})]), Turn("Four.")]
    workflow = await save(client, headers, {
        "name": "Count", "start": "write",
        "steps": {"write": {"kind": "agent", "agent_id": writer["id"], "input": "Count", "next": "sum"},
                  "sum": {"kind": "tool", "tool": "calculator", "arguments": {"expression": "1 / 0"}}}})
    run = await settle_workflow(client, headers, (await start(client, headers, workflow["id"]))["id"])
    assert run["status"] == "failed", run   # the tool step divides by zero
    assert await client.app[TRACING].flush()
    await otlp.wait_for(lambda spans: otlp.named("run workflow"))
    (run_span,) = otlp.named("run workflow")
    (post,) = otlp.named("POST /api/workflows/{id}/runs")
    assert (run_span.trace_id, run_span.parent_id) == (post.trace_id, post.span_id)
    assert run_span.attributes["agentstead.workflow.id"] == workflow["id"]
    assert run_span.attributes["agentstead.run.kind"] == "workflow"
    assert run_span.status == "error" and run_span.attributes["agentstead.run.status"] == "failed"
    children = [s for s in otlp.spans if s.parent_id == run_span.span_id]
    assert sorted(s.name for s in children) == ["chat gpt-test", "chat gpt-test", "execute_tool calculator",
                                                "execute_tool calculator"]
    agent_tool, step_tool = sorted(otlp.named("execute_tool calculator"), key=lambda s: s.start_ns)
    assert agent_tool.attributes["agentstead.tool.ok"] is True and "gen_ai.tool.call.id" in agent_tool.attributes
    assert step_tool.attributes["agentstead.tool.ok"] is False and step_tool.status == "error"
    assert step_tool.attributes["error.type"] == "tool_error"

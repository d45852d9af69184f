"""Whatever arrives on the socket, no page's update raises: malformed, partial, wrongly typed
or out-of-order messages are ignored (the server is trusted, but a proxy, a future event type
or a bug must not stop the app)."""

import chat
import runs
import workflows
import workflow_run
import app
from runtime import live_message, Live, Topics
from kit import text_of

JUNK = [
    {}, {"op": None}, {"op": "event"}, {"op": "event", "topic": 5}, {"op": "subscribed"},
    {"op": "subscribed", "seq": "x"}, {"op": "error"}, {"op": "error", "code": 7}, {"op": "pong"},
    {"op": "surprise", "topic": "threads/t1"},
]


def events(topic):
    base = {"op": "event", "topic": topic, "at": "2026-01-01T00:00:00Z"}
    out = []
    for kind in ("message.delta", "message.created", "tool.call", "tool.result", "run.queued", "run.started",
                 "run.waiting", "run.succeeded", "run.failed", "run.cancelled", "run.interrupted", "step.started",
                 "step.succeeded", "step.waiting", "step.failed", "step.retrying", "token.created", "nonsense"):
        for data in (None, {}, {"run_id": None}, {"run_id": "r1", "text": None, "message": None, "step": None,
                                                  "question": 5, "output": {"x": [1]}, "arguments": "notadict"},
                     "a string"):
            for seq in (1, None, "7", -3, 10 ** 12):
                out.append(dict(base, type=kind, data=data, seq=seq))
    return out


def feed(module, model, topic):
    """Every junk message as the app hands it over: those live_message refuses never reach a page."""
    n = 0
    for data in JUNK + events(topic):
        data = live_message(data)
        if data is None:
            continue
        model, fx = module.update(Live(data), model)
        assert isinstance(fx, list)
        module.view(model)
        n += 1
    return model, n


def test_chat_survives_junk():
    model, _ = chat.init("t1")
    model, _ = chat.update(chat.GotReplayFrom("nonsense"), model)
    model, n = feed(chat, model, "threads/t1")
    assert n > 100 and text_of(chat.view(model))


def test_runs_survive_junk():
    model, _ = runs.init({})
    model, _ = runs.update(runs.GotRuns({"runs": [{"id": "r1", "thread_id": "t1", "status": "running",
                                                   "created_at": "", "started_at": "bad"}]}), model)
    model, n = feed(runs, model, "threads/t1")
    assert n > 100


def test_workflows_survive_junk():
    model, _ = workflows.init(("w1", {"run": "r1"}))
    model, _ = workflows.update(workflow_run.GotRun({"id": "r1", "status": "running", "steps": []}), model)
    model, n = feed(workflows, model, "runs/r1")
    assert n > 100


def test_app_survives_junk_on_every_page():
    for url in ("/chat/t1", "/runs", "/workflows/w1?run=r1", "/agents", "/admin"):
        model, _ = app.init(url)
        model, _ = app.update(app.GotMe({"user": {"id": "u", "email": "e", "name": "", "role": "admin"}}), model)
        model, _ = app.update(app.WsOpened(), model)
        for data in JUNK:
            model, fx = app.update(app.WsMessage(data), model)
        app.view(model)


def test_live_message_keeps_the_promised_shapes_only():
    good = {"op": "event", "topic": "threads/t", "seq": 3, "type": "run.queued", "data": {}, "at": ""}
    assert live_message(good) is good
    assert live_message({"op": "subscribed", "topic": "x", "seq": 0}) is not None
    assert live_message({"op": "pong"}) is not None
    for bad in (None, [], "x", {"op": 1}, dict(good, seq="3"), dict(good, seq=True), dict(good, seq=-1),
                dict(good, data=[]), dict(good, type=None), dict(good, topic=[]), {"op": "error", "code": None}):
        assert live_message(bad) is None, bad


def test_topics_pass_junk_through_unchanged():
    topics = Topics()
    topics.sync({"threads/t1": 4})
    for data in JUNK + [{"op": "error", "code": "forbidden", "id": [1]}, {"op": "error", "code": "x", "id": 99},
                        {"op": "subscribed", "id": {"a": 1}}, {"op": "event", "id": 1, "topic": "x"}]:
        assert topics.receive(data) is data
    assert topics.sync({"threads/t1": 4}) == []          # still followed: nothing refused

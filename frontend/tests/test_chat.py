"""The chat page: streamed deltas, replay after reload or reconnect without loss or
duplication, tool calls, ask_human answered inline, cancel and resume."""

import chat
import thread_list
import controls
import run_usage
import transcript
import fakedom
from runtime import Http, Navigate, ApiError, Recall, Remember, Copy, Live, KnowUser, Connected, Disconnected, diff
from kit import find, find_all, text_of, fire, effects_of

T = "t1"


def ev(seq, kind, **data):
    data.setdefault("thread_id", T)
    return {"op": "event", "topic": "threads/" + T, "seq": seq, "type": kind, "at": "2026-01-01T00:00:00Z",
            "data": data}


def live(model, *events):
    for e in events:
        model, _ = chat.update(Live(e), model)
    return model


def opened(kept=None):
    """The page as the runtime starts it: init, then the answer to its Recall of the kept cursor."""
    model, fx = chat.init(T)
    recall = effects_of(fx, Recall)[0]
    assert recall.key == "agentstead:replay:t1"
    model, more = chat.update(recall.to_msg(kept), model)
    return model, fx + more


def stream_events(words, run="r1", start=10):
    out = [ev(start, "run.queued", run_id=run, agent_id="a"), ev(start + 1, "run.started", run_id=run, resumed=False)]
    for i, w in enumerate(words):
        out.append(ev(start + 2 + i, "message.delta", run_id=run, text=w))
    return out


def test_init_loads_thread_runs_and_replays_the_log():
    model, fx = opened()
    urls = [e.url for e in effects_of(fx, Http)]
    assert "/api/threads/t1?limit=100" in urls and "/api/runs?limit=50&thread_id=t1" in urls
    assert chat.subscriptions(model) == {"threads/t1": 0}          # the whole retained log
    # a cursor this browser kept while the thread was idle: the replay starts there
    model, fx = opened(kept="57")
    assert chat.subscriptions(model) == {"threads/t1": 57}
    model, fx = opened(kept="garbage")
    assert chat.subscriptions(model) == {"threads/t1": 0}
    # nothing is followed before the kept cursor is known
    model, fx = chat.init(T)
    assert chat.subscriptions(model) == {}
    # once events came, a subscribe after a drop resumes from the last one seen
    model, fx = opened(kept="57")
    model, _ = chat.update(Live({"op": "subscribed", "topic": "threads/t1", "seq": 60}), model)
    assert chat.subscriptions(model) == {"threads/t1": 60}
    model, _ = chat.update(Live(ev(61, "run.queued", run_id="r1", agent_id="a")), model)
    model, fx = chat.update(Disconnected(), model)
    assert fx == [] and chat.subscriptions(model) == {"threads/t1": 61}
    model, fx = chat.update(Connected(True), model)
    assert chat.subscriptions(model) == {"threads/t1": 61}


def test_deltas_stream_and_a_replay_does_not_duplicate():
    model, _ = opened()
    events = stream_events(["Hel", "lo ", "there"])
    model = live(model, *events)
    assert model.streams == {"r1": "Hello there"}
    # the same events again (overlap of replay and live) change nothing
    model = live(model, *events)
    assert model.streams == {"r1": "Hello there"}
    tree = chat.view(model)
    assert find(tree, "li", "Hello there", **{"class": "msg assistant streaming"})
    assert find(tree, "button", "Cancel")


def test_reload_mid_stream_then_message_created():
    # a reload: REST messages and the replayed log arrive in either order
    user = {"id": "m1", "seq": 1, "role": "user", "content": "Hi", "run_id": None}
    reply = {"id": "m2", "seq": 2, "role": "assistant", "content": "Hello there", "run_id": "r1", "partial": False}
    for rest_first in (True, False):
        model, _ = opened()
        if rest_first:
            model, _ = chat.update(chat.GotThread({"id": T, "title": "x", "messages": [user]}), model)
        model = live(model, *stream_events(["Hello", " there"]))
        if not rest_first:
            model, _ = chat.update(chat.GotThread({"id": T, "title": "x", "messages": [user]}), model)
        model = live(model, ev(20, "message.created", run_id="r1", message=reply),
                     ev(21, "run.succeeded", run_id="r1", prompt_tokens=3, completion_tokens=2))
        assert model.streams == {}
        assert [m["id"] for m in model.messages] == ["m1", "m2"]
        assert text_of(transcript.view(model)).count("Hello there") == 1


def test_resumed_run_restreams_from_scratch():
    model, _ = opened()
    model = live(model, *stream_events(["Hello", " wor"]))
    model = live(model, ev(30, "run.interrupted", run_id="r1"))
    tree = chat.view(model)
    assert find(tree, "button", "Resume")
    assert "Hello wor" in text_of(tree)
    model = live(model, ev(31, "run.started", run_id="r1", resumed=True),
                 ev(32, "message.delta", run_id="r1", text="Hello"), ev(33, "message.delta", run_id="r1", text=" world"))
    assert model.streams["r1"] == "Hello world"
    assert not find_all(chat.view(model), "button", "Resume")


def test_resume_and_cancel_effects():
    model, _ = opened()
    model = live(model, *stream_events(["x"]))
    model, fx = chat.update(fire(find(chat.view(model), "button", "Cancel"), "click"), model)
    assert fx[0].method == "POST" and fx[0].url == "/api/runs/r1/cancel"
    assert find(chat.view(model), "button", "Cancel", disabled=True)
    model, fx2 = chat.update(transcript.Cancel("r1"), model)
    assert fx2 == []        # one request at a time
    model, _ = chat.update(fx[0].on_ok({"id": "r1", "status": "cancelled"}), model)
    model = live(model, ev(40, "run.cancelled", run_id="r1"))
    assert "Cancelled." in text_of(chat.view(model))
    model, fx = chat.update(transcript.Resume("r2"), model)
    assert fx[0].url == "/api/runs/r2/resume" and fx[0].body is None
    model, _ = chat.update(fx[0].on_err(ApiError(409, "conflict", "The run cannot be resumed.")), model)
    assert model.error == "The run cannot be resumed." and not model.busy


def test_ask_human_is_answered_inline():
    model, _ = opened()
    model = live(model, ev(10, "run.started", run_id="r1", resumed=False),
                 ev(11, "run.waiting", run_id="r1", question="Which city?"))
    tree = chat.view(model)
    form = find(tree, "form", aria_label="Answer the agent")
    assert "Which city?" in text_of(form)
    box = find(form, "textarea")
    assert find(tree, "label", "Your answer").attrs["for"] == box.attrs["id"]
    model, _ = chat.update(fire(box, "input", "Paris"), model)
    assert find(chat.view(model), "button", "Answer").attrs.get("disabled") in (False, None)
    model, fx = chat.update(fire(find(chat.view(model), "form", aria_label="Answer the agent"), "submit"), model)
    assert fx[0].url == "/api/runs/r1/resume" and fx[0].body == {"answer": "Paris"}
    model, _ = chat.update(fx[0].on_ok({"id": "r1", "status": "running"}), model)
    assert model.runs["r1"] == "running" and "r1" not in model.prompts
    assert not find_all(chat.view(model), "form", aria_label="Answer the agent")


def test_empty_answer_is_not_sent():
    model, _ = opened()
    model = live(model, ev(11, "run.waiting", run_id="r1", question="?"))
    model, fx = chat.update(transcript.Answer("r1"), model)
    assert fx == []


def test_waiting_run_after_reload_comes_from_rest():
    model, _ = opened()
    model, _ = chat.update(transcript.GotRuns({"runs": [
        {"id": "r1", "thread_id": T, "status": "waiting_for_input", "waiting_prompt": "Sure?", "input_message_id": "m1"},
        {"id": "r0", "thread_id": T, "status": "interrupted", "error": {"code": "interrupted", "message": "stopped"},
         "input_message_id": "m0"}]}), model)
    tree = chat.view(model)
    assert "Sure?" in text_of(tree) and find(tree, "button", "Resume")
    # events are newer than the REST snapshot: a later GotRuns does not undo them
    model = live(model, ev(50, "run.succeeded", run_id="r1", prompt_tokens=1, completion_tokens=1))
    model, _ = chat.update(transcript.GotRuns({"runs": [{"id": "r1", "thread_id": T, "status": "waiting_for_input",
                                                   "waiting_prompt": "Sure?"}]}), model)
    assert model.runs["r1"] == "succeeded"


def test_tool_calls_and_results():
    model, _ = opened()
    model = live(model, ev(10, "run.started", run_id="r1", resumed=False),
                 ev(11, "message.created", run_id="r1", message={
                     "id": "m2", "seq": 2, "role": "assistant", "content": "", "partial": False, "run_id": "r1",
                     "tool_calls": [{"id": "c1", "name": "calculator", "args": {"expression": "2+2"}}]}),
                 ev(12, "tool.call", run_id="r1", call_id="c1", name="calculator", arguments={"expression": "2+2"}))
    text = text_of(chat.view(model))
    assert "Called calculator(expression: 2+2)" in text and "running…" in text
    model = live(model, ev(13, "tool.result", run_id="r1", call_id="c1", name="calculator", ok=True, output="4"))
    assert "returned" in text_of(chat.view(model))
    model = live(model, ev(14, "message.created", run_id="r1", message={
        "id": "m3", "seq": 3, "role": "tool", "content": "4", "partial": False, "run_id": "r1", "tool_call_id": "c1"}))
    tree = chat.view(model)
    assert find(tree, "summary", "Tool result") and "running…" not in text_of(tree)
    assert not find_all(tree, "li", **{"class": "msg tool live"})


def test_failed_run_and_cursor_expired():
    model, _ = opened()
    model = live(model, ev(10, "run.failed", run_id="r1", code="llm_error", message="The model is unreachable."))
    assert "The model is unreachable." in text_of(chat.view(model))
    expired = {"op": "error", "code": "cursor_expired", "message": "x", "topic": "threads/t1", "floor": 50}
    model, fx = chat.update(Live(expired), model)
    assert effects_of(fx, Http)[0].url == "/api/threads/t1?limit=100"
    assert Remember("agentstead:replay:t1", None) in fx          # the kept cursor is too old: forget it
    assert chat.subscriptions(model) == {"threads/t1": None}    # then live events only


def test_send_and_post_failure_keeps_the_text():
    model, _ = opened()
    model, _ = chat.update(fire(find(chat.view(model), "textarea", id="composer"), "input", "Hello"), model)
    model, fx = chat.update(fire(find(chat.view(model), "textarea", id="composer"), "keydown", key="Enter"), model)
    assert fx[0].body == {"content": "Hello"} and model.composer == ""
    assert model.messages[-1]["pending"]
    model, _ = chat.update(fx[0].on_err(ApiError(429, "rate_limited", "Slow down.")), model)
    assert model.composer == "Hello" and model.error == "Slow down." and model.messages == []
    model, fx = chat.update(chat.SendMessage(), model)
    model, _ = chat.update(fx[0].on_ok({"id": "r9", "status": "queued", "input_message_id": "m9"}), model)
    assert model.messages[-1]["id"] == "m9" and model.runs["r9"] == "queued"
    assert "Queued" in text_of(chat.view(model))


def test_events_of_other_topics_are_ignored():
    model, _ = opened()
    other = dict(ev(10, "message.delta", run_id="r1", text="x"), topic="threads/other")
    assert live(model, other).streams == {}


def test_long_thread_renders_messages_once():
    model, _ = opened()
    msgs = [{"id": "m%d" % i, "seq": i, "role": "user" if i % 2 else "assistant", "content": "message %d" % i,
             "run_id": None} for i in range(200)]
    model, _ = chat.update(chat.GotThread({"id": T, "title": "Long", "messages": msgs}), model)
    assert len(find_all(transcript.view(model), "li")) == 200


def test_a_streamed_token_into_a_long_thread_patches_one_text_node():
    model, _ = opened()
    msgs = [{"id": "m%d" % i, "seq": i, "role": "user" if i % 2 else "assistant", "content": "message %d" % i,
             "run_id": None} for i in range(200)]
    model, _ = chat.update(chat.GotThread({"id": T, "title": "Long", "messages": msgs}), model)
    model = live(model, *stream_events(["Hel"], start=300))
    old = chat.view(model)
    applier, root = fakedom.mount(old)
    model = live(model, ev(400, "message.delta", run_id="r1", text="lo"))
    new = chat.view(model)
    ops = diff(old, new)
    # the new text, and the composer's and the search field's values re-checked against what was typed
    assert sorted((op[0], op[2] if op[0] == "attr" else "") for op in ops) == \
        [("attr", "value"), ("attr", "value"), ("text", "")], ops
    applier.apply(ops)
    assert "Hello" in root.text() and root.text().count("message 199") == 1


def test_the_cursor_is_kept_only_while_no_run_is_going():
    model, _ = opened()
    model, fx = chat.update(Live({"op": "subscribed", "topic": "threads/t1", "seq": 9}), model)
    assert fx == [Remember("agentstead:replay:t1", 9)]
    model, fx = chat.update(Live(ev(10, "run.queued", run_id="r1", agent_id="a")), model)
    assert effects_of(fx, Remember) == []
    for e in stream_events(["a", "b"], start=11)[1:]:
        model, fx = chat.update(Live(e), model)
        assert effects_of(fx, Remember) == []      # mid-stream: a reload must replay from before the run
    model, fx = chat.update(Live(ev(20, "message.created", run_id="r1", message={
        "id": "m2", "seq": 2, "role": "assistant", "content": "ab", "partial": False})), model)
    assert effects_of(fx, Remember) == []          # still running until run.succeeded
    model, fx = chat.update(Live(ev(21, "run.succeeded", run_id="r1", prompt_tokens=1, completion_tokens=1)), model)
    assert fx == [Remember("agentstead:replay:t1", 21)]
    model, fx = chat.update(Live(ev(21, "run.succeeded", run_id="r1", prompt_tokens=1, completion_tokens=1)), model)
    assert fx == []                                # nothing new: nothing written


def test_a_sent_message_keeps_its_place_among_replies():
    model, _ = opened()
    stored = [{"id": "m%d" % i, "seq": i, "role": "user" if i % 2 else "assistant", "content": "c%d" % i,
               "run_id": None} for i in range(1, 11)]
    model, _ = chat.update(chat.GotThread({"id": T, "title": "x", "messages": stored}), model)
    model, fx = chat.update(chat.SetComposer("first"), model)
    model, fx = chat.update(chat.SendMessage(), model)
    # the reply is stored and announced before the POST's answer comes back
    reply = {"id": "m12", "seq": 12, "role": "assistant", "content": "answer", "partial": False}
    model = live(model, ev(100, "message.created", run_id="r1", message=reply))
    assert [m["content"] for m in model.messages[-2:]] == ["first", "answer"]
    model, _ = chat.update(fx[0].on_ok({"id": "r1", "status": "queued", "input_message_id": "m11"}), model)
    model, _ = chat.update(chat.SetComposer("second"), model)
    model, fx = chat.update(chat.SendMessage(), model)
    model = live(model, ev(101, "message.created", run_id="r2", message=dict(reply, id="m14", seq=14, content="again")))
    assert [m["content"] for m in model.messages[-4:]] == ["first", "answer", "second", "again"]
    # the REST page after a reload has the real seqs: same order, nothing twice
    real = stored + [{"id": "m11", "seq": 11, "role": "user", "content": "first", "run_id": None}, reply,
                     {"id": "m13", "seq": 13, "role": "user", "content": "second", "run_id": None},
                     dict(reply, id="m14", seq=14, content="again")]
    model, _ = chat.update(fx[0].on_ok({"id": "r2", "status": "queued", "input_message_id": "m13"}), model)
    model, _ = chat.update(chat.GotThread({"id": T, "title": "x", "messages": real}), model)
    assert [m["content"] for m in model.messages[-4:]] == ["first", "answer", "second", "again"]
    assert len(model.messages) == 14


def shown_thread():
    """The page with its thread list and thread loaded."""
    model, _ = opened()
    model, _ = chat.update(thread_list.GotThreads([{"id": T, "title": "Trip"}, {"id": "t2", "title": "Other"}]), model)
    model, _ = chat.update(chat.GotThread({"id": T, "title": "Trip", "messages": []}), model)
    return model


def test_rename_the_thread():
    model = shown_thread()
    model, none = chat.update(fire(find(chat.view(model), "button", "Rename"), "click"), model)
    assert none == [] and model.renaming == "Trip"
    model, _ = chat.update(fire(find(chat.view(model), "input", id="thread-title-input"), "input", "  Trip to Paris "),
                           model)
    model, fx = chat.update(fire(find(chat.view(model), "form", aria_label="Rename the thread"), "submit"), model)
    assert fx == [Http("PATCH", "/api/threads/t1", {"title": "Trip to Paris"}, fx[0].on_ok, fx[0].on_err)]
    assert chat.update(chat.SaveTitle(), model)[1] == []          # one request at a time
    model, _ = chat.update(fx[0].on_ok({"id": T, "title": "Trip to Paris"}), model)
    assert model.title == "Trip to Paris" and model.renaming is None and not model.thread_busy
    tree = chat.view(model)
    assert find(tree, "h1", "Trip to Paris") and find(tree, "a", "Trip to Paris", href="/chat/t1")
    assert find(tree, "a", "Other", href="/chat/t2")


def test_a_refused_rename_says_why_and_keeps_what_was_typed():
    model = shown_thread()
    model, _ = chat.update(chat.EditTitle("Trip"), model)
    model, _ = chat.update(chat.SetTitle("   "), model)
    assert find(chat.view(model), "button", "Save").attrs["disabled"]
    assert chat.update(chat.SaveTitle(), model)[1] == []          # blank: nothing sent
    model, _ = chat.update(chat.SetTitle("Trip"), model)
    model, fx = chat.update(chat.SaveTitle(), model)
    assert fx == [] and model.renaming is None                    # unchanged: nothing sent
    model, _ = chat.update(chat.EditTitle("Trip"), model)
    model, _ = chat.update(chat.SetTitle("New"), model)
    model, fx = chat.update(chat.SaveTitle(), model)
    model, _ = chat.update(fx[0].on_err(ApiError(422, "validation_failed", "must be 1 to 200 characters")), model)
    assert find(chat.view(model), "p", "must be 1 to 200 characters", role="alert")
    assert model.renaming == "New" and not model.thread_busy and model.title == "Trip"
    model, _ = chat.update(fire(find(chat.view(model), "button", "Cancel"), "click"), model)
    assert model.renaming is None and find(chat.view(model), "h1", "Trip")


def test_delete_the_thread_after_confirming():
    model = shown_thread()
    model, none = chat.update(fire(find(chat.view(model), "button", "Delete…"), "click"), model)
    assert none == [] and find(chat.view(model), "p", "cannot be undone", aria_label="Delete the thread")
    model, none = chat.update(fire(find(chat.view(model), "button", "Keep"), "click"), model)
    assert none == [] and not model.confirm_delete and not find_all(chat.view(model), "p", "cannot be undone")
    model, _ = chat.update(chat.AskDelete(True), model)
    [confirm] = [b for b in find_all(chat.view(model), "button", "Delete") if b.attrs.get("class") == "danger"]
    model, fx = chat.update(fire(confirm, "click"), model)
    assert [(e.method, e.url) for e in fx] == [("DELETE", "/api/threads/t1")]
    assert chat.update(chat.DeleteThread(), model)[1] == []       # one request at a time
    # a failure says why and leaves the thread where it was
    failed, _ = chat.update(fx[0].on_err(ApiError(404, "not_found", "no such thread")), model)
    assert find(chat.view(failed), "p", "no such thread", role="alert") and not failed.thread_busy
    model, out = chat.update(fx[0].on_ok(None), model)
    assert out == [Remember("agentstead:replay:t1", None), Navigate("/chat")]
    assert [t["id"] for t in model.threads] == ["t2"]


def test_an_answer_for_another_thread_changes_only_the_list():
    model = shown_thread()
    model, fx = chat.update(chat.Renamed({"id": "t2", "title": "Renamed elsewhere"}), model)
    assert fx == [] and model.title == "Trip" and [t["title"] for t in model.threads] == ["Trip", "Renamed elsewhere"]
    model, fx = chat.update(chat.Deleted("t2"), model)
    assert fx == [] and [t["id"] for t in model.threads] == [T]


def test_a_rename_or_delete_in_another_tab_reaches_this_one():
    model = shown_thread()
    model, _ = chat.update(Live({"op": "subscribed", "topic": "threads/" + T, "seq": 5}), model)
    model, fx = chat.update(Live(ev(6, "thread.renamed", title="From the other tab")), model)
    assert model.title == "From the other tab" and model.last_seq == 6
    assert find(chat.view(model), "a", "From the other tab", href="/chat/t1")
    # another thread's id, or no title: ignored
    model, _ = chat.update(Live(ev(7, "thread.renamed", thread_id="t2", title="x")), model)
    model, _ = chat.update(Live(ev(8, "thread.renamed", title=None)), model)
    assert model.title == "From the other tab" and [t["title"] for t in model.threads] == ["From the other tab", "Other"]
    model, fx = chat.update(Live(ev(9, "thread.deleted")), model)
    assert fx == [Remember("agentstead:replay:t1", None), Navigate("/chat")]
    assert [t["id"] for t in model.threads] == ["t2"]



# ---- the thread list follows users/<me> -----------------------------------------

def user_ev(seq, kind, topic="users/u1", **data):
    return {"op": "event", "topic": topic, "seq": seq, "type": kind, "at": "2026-01-01T00:00:00Z", "data": data}


def knowing(model):
    model, _ = chat.update(KnowUser("u1"), model)
    return model


def test_the_page_follows_the_users_topic_once_it_knows_the_user():
    model, _ = opened()
    model, fx = chat.update(KnowUser("u1"), model)
    assert fx == [] and chat.subscriptions(model) == {"threads/t1": 0, "users/u1": None}    # live only
    # its replies are not the thread's: its subscribed, and its errors (the socket names their topic)
    model, _ = chat.update(Live({"op": "subscribed", "topic": "users/u1", "seq": 99, "id": 2}), model)
    assert model.last_seq is None
    for code in ("forbidden", "already_subscribed", "cursor_expired"):
        refused = {"op": "error", "code": code, "message": "x", "id": 2, "topic": "users/u1", "floor": 1}
        assert chat.update(Live(refused), model) == (model, [])
    # the thread's own still work as before
    model, _ = chat.update(Live({"op": "error", "code": "forbidden", "message": "x", "topic": "threads/t1"}), model)
    assert model.error == "This thread does not exist or is not yours."
    model, _ = chat.update(Live({"op": "subscribed", "topic": "threads/t1", "seq": 5}), model)
    assert model.last_seq == 5 and chat.subscriptions(model) == {"threads/t1": 5, "users/u1": None}
    # the chat index (no thread open) follows the list too
    model, _ = chat.init(None)
    model, fx = chat.update(KnowUser("u1"), model)
    assert fx == [] and chat.subscriptions(model) == {"users/u1": None}
    # the first Connected does not fetch the list again (init did)
    model, _ = opened()
    model, fx = chat.update(Connected(False), model)
    assert fx == []


def test_threads_created_renamed_or_deleted_elsewhere_update_the_list():
    model = knowing(shown_thread())
    model, _ = chat.update(Live({"op": "subscribed", "topic": "threads/" + T, "seq": 5}), model)
    created = user_ev(20, "thread.created", thread_id="t3", agent_id="a1", title="New one",
                      created_at="2026-01-02T00:00:00Z")
    model, fx = chat.update(Live(created), model)
    assert fx == [] and [t["id"] for t in model.threads] == ["t3", T, "t2"]
    assert model.threads[0] == {"id": "t3", "agent_id": "a1", "title": "New one",
                                "created_at": "2026-01-02T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z"}
    assert find(chat.view(model), "a", "New one", href="/chat/t3")
    assert live(model, created).threads == model.threads                  # once
    model, fx = chat.update(Live(user_ev(21, "thread.renamed", thread_id="t2", title="Elsewhere")), model)
    assert fx == [] and model.title == "Trip"
    assert [t["title"] for t in model.threads] == ["New one", "Trip", "Elsewhere"]
    model, fx = chat.update(Live(user_ev(22, "thread.renamed", thread_id=T, title="Open one")), model)
    assert model.title == "Open one" and model.threads[1]["title"] == "Open one"
    assert find(chat.view(model), "h1", "Open one")
    model, fx = chat.update(Live(user_ev(23, "thread.deleted", thread_id="t3")), model)
    assert fx == [] and [t["id"] for t in model.threads] == [T, "t2"]
    # the thread's cursor is not moved by the list's events, and run.* or malformed ones change nothing
    assert model.last_seq == 5
    for e in (user_ev(24, "run.succeeded", run_id="r1", thread_id="t2", prompt_tokens=1, completion_tokens=1),
              user_ev(25, "run.queued", run_id="r2", thread_id=T, agent_id="a"),
              user_ev(26, "token.revoked", token_id="k1"),
              user_ev(27, "thread.created", thread_id="t4"),
              user_ev(28, "thread.renamed", thread_id="t2", title=None),
              user_ev(29, "thread.deleted", thread_id=None)):
        assert chat.update(Live(e), model) == (model, [])
    # while the list is loading a created thread comes with the list
    loading, _ = opened()
    loading = knowing(loading)
    assert chat.update(Live(created), loading)[0].threads is None


def test_deleting_the_open_thread_elsewhere_leaves_it():
    model = knowing(shown_thread())
    model, fx = chat.update(Live(user_ev(30, "thread.deleted", thread_id=T)), model)
    assert fx == [Remember("agentstead:replay:t1", None), Navigate("/chat")]
    assert [t["id"] for t in model.threads] == ["t2"]


def test_a_reconnect_fetches_the_list_again():
    model = knowing(shown_thread())
    model, _ = chat.update(Live({"op": "subscribed", "topic": "threads/" + T, "seq": 5}), model)
    model, fx = chat.update(Disconnected(), model)
    assert fx == []
    model, fx = chat.update(Connected(True), model)
    assert chat.subscriptions(model) == {"threads/t1": 5, "users/u1": None}
    assert [e.url for e in effects_of(fx, Http)] == ["/api/threads?limit=100"]
    model, _ = chat.update(effects_of(fx, Http)[0].on_ok({"threads": [{"id": "t5", "title": "Made offline"},
                                                                       {"id": T, "title": "Trip"}]}), model)
    assert [t["id"] for t in model.threads] == ["t5", T]
    assert find(chat.view(model), "a", "Made offline", href="/chat/t5")


def test_list_events_during_the_list_request_are_applied_to_its_answer():
    """After a reconnect the list is fetched again; what users/<me> says meanwhile may be newer
    than the answer (read before it), so it is applied again on top of the answer."""
    model = knowing(shown_thread())
    model, _ = chat.update(Disconnected(), model)
    model, fx = chat.update(Connected(True), model)
    request = effects_of(fx, Http)[0]
    for e in (user_ev(50, "thread.created", thread_id="t6", agent_id="a1", title="Made just now", created_at="x"),
              user_ev(51, "thread.renamed", thread_id="t2", title="Renamed just now"),
              user_ev(52, "thread.deleted", thread_id="t7")):
        model, _ = chat.update(Live(e), model)
    # the answer was read before the three events: it has t7, the old title, and no t6
    model, _ = chat.update(request.on_ok({"threads": [{"id": T, "title": "Trip"}, {"id": "t2", "title": "Old"},
                                                      {"id": "t7", "title": "Deleted just now"}]}), model)
    assert [(t["id"], t["title"]) for t in model.threads] == [("t6", "Made just now"), (T, "Trip"),
                                                               ("t2", "Renamed just now")]
    assert model.list_events is None
    # once answered, events are applied as they come and not kept
    model, _ = chat.update(Live(user_ev(53, "thread.deleted", thread_id="t6")), model)
    assert [t["id"] for t in model.threads] == [T, "t2"] and model.list_events is None

def test_list_events_of_another_topic_are_ignored():
    model = knowing(shown_thread())
    for e in (user_ev(40, "thread.created", topic="users/u2", thread_id="t9", agent_id="a", title="Not mine",
                      created_at="x"),
              user_ev(41, "thread.deleted", topic="users/u2", thread_id="t2"),
              user_ev(42, "thread.deleted", topic="system", thread_id="t2")):
        assert chat.update(Live(e), model)[0].threads == model.threads
    # before the user is known, users/<me> is nobody's topic
    model = shown_thread()
    assert chat.update(Live(user_ev(43, "thread.deleted", thread_id=T)), model) == (model, [])


def test_a_send_carries_an_idempotency_key_and_a_resend_of_the_same_text_reuses_it():
    """A failed send (maybe only its answer was lost) sent again is the same action: the same
    key, so the server makes one message; other text, or a send after success, is a new one."""
    model, _ = opened()
    model, _ = chat.update(chat.SetComposer("Hello"), model)
    model, fx = chat.update(chat.SendMessage(), model)
    first = fx[0].key
    assert first and fx[0].url == "/api/threads/t1/messages"
    model, _ = chat.update(fx[0].on_err(ApiError(503, "database_unavailable", "Try again.")), model)
    model, fx = chat.update(chat.SendMessage(), model)            # the text came back to the composer
    assert fx[0].key == first
    model, _ = chat.update(fx[0].on_err(ApiError(0, "network_error", "Unreachable.")), model)
    model, _ = chat.update(chat.SetComposer("Hello again"), model)
    model, fx = chat.update(chat.SendMessage(), model)
    second = fx[0].key
    assert second and second != first
    model, _ = chat.update(fx[0].on_ok({"id": "r1", "status": "queued", "input_message_id": "m1"}), model)
    model, _ = chat.update(chat.SetComposer("Hello again"), model)
    model, fx = chat.update(chat.SendMessage(), model)
    assert fx[0].key not in (first, second)                        # sent and answered: a new action


def test_a_long_thread_opens_at_its_newest_page_and_shows_earlier_ones_on_request():
    model, _ = opened()
    newest = [{"id": "m%d" % i, "seq": i, "role": "user", "content": "message %d" % i, "run_id": None}
              for i in range(101, 201)]
    model, _ = chat.update(chat.GotThread({"id": T, "title": "Long", "messages": newest, "next": None,
                                           "prev": 101}), model)
    button = find(chat.view(model), "button", "Show earlier messages")
    model, fx = chat.update(fire(button, "click"), model)
    assert fx[0].url == "/api/threads/t1?limit=100&before=101" and model.loading_earlier
    assert find(chat.view(model), "button", "Loading…").attrs["disabled"]
    earlier = [{"id": "m%d" % i, "seq": i, "role": "user", "content": "message %d" % i, "run_id": None}
               for i in range(1, 101)]
    model, _ = chat.update(fx[0].on_ok({"id": T, "title": "Long", "messages": earlier, "next": 101, "prev": None}),
                           model)
    assert [m["seq"] for m in model.messages] == list(range(1, 201))
    assert not find_all(chat.view(model), "button", "Show earlier messages")   # the thread's start is shown
    # a reload of the newest page (a reconnect) keeps what is shown
    model, _ = chat.update(chat.GotThread({"id": T, "title": "Long", "messages": newest, "next": None,
                                           "prev": 101}), model)
    assert len(model.messages) == 200 and model.prev is None


def test_answers_are_markdown_and_copy_buttons_copy():
    model, _ = opened()
    msgs = [{"id": "m1", "seq": 1, "role": "user", "content": "**not** rendered", "run_id": None},
            {"id": "m2", "seq": 2, "role": "assistant", "content": "A **bold** answer\n\n```py\nx = 1\n```\n",
             "run_id": None}]
    model, _ = chat.update(chat.GotThread({"id": T, "title": "MD", "messages": msgs}), model)
    tree = chat.view(model)
    assert "**not** rendered" in text_of(find(tree, "li", **{"class": "msg user"}))   # what the person typed, as typed
    answer = find(tree, "li", **{"class": "msg assistant"})
    assert text_of(find(answer, "strong")) == "bold"
    _, fx = chat.update(find(answer, "button", text="Copy", **{"aria-label": "Copy code"}).attrs["onclick"], model)
    assert fx == [Copy("x = 1\n")]
    _, fx = chat.update(find(answer, "button", **{"aria-label": "Copy message"}).attrs["onclick"], model)
    assert fx == [Copy(msgs[1]["content"])]
    # streamed text is Markdown while it arrives
    model = live(model, *stream_events(["Some ", "*emphasis*"], start=10))
    assert text_of(find(chat.view(model), "em")) == "emphasis"


def test_search_from_the_thread_list():
    model, _ = opened()
    model, fx = chat.update(thread_list.SetQuery("capi"), model)
    model, fx2 = chat.update(thread_list.SetQuery("capital fr"), model)
    delays = [e.msg for e in fx + fx2]
    assert [d.query for d in delays] == ["capi", "capital fr"]
    model, fx = chat.update(delays[0], model)              # typed on since: no request
    assert fx == []
    model, fx = chat.update(delays[1], model)
    http = effects_of(fx, Http)[0]
    assert http.url == "/api/search?limit=20&q=capital%20fr"
    late = http.on_ok({"threads": [], "messages": []})
    body = {"threads": [{"id": "t9", "title": "Capital", "updated_at": "x",
                         "highlight": [{"text": "Capital", "match": True}]}],
            "messages": [{"id": "m1", "seq": 3, "thread_id": "t2", "thread_title": "Geo", "role": "assistant",
                          "created_at": "x", "snippet": [{"text": "Paris is the ", "match": False},
                                                         {"text": "capital", "match": True},
                                                         {"text": " <b>of</b> France", "match": False}]}]}
    model, _ = chat.update(http.on_ok(body), model)
    tree = thread_list.side(model)
    results = find(tree, "ul", **{"aria-label": "Search results"})
    assert [text_of(m) for m in find_all(results, "mark")] == ["Capital", "capital"]
    assert find(results, "a", text="Paris").attrs["href"] == "/chat/t2"
    assert not find_all(results, "b")                      # a snippet is text, never markup
    # an answer to a query typed over is dropped; clearing shows the list again
    model, _ = chat.update(thread_list.SetQuery("other"), model)
    model2, _ = chat.update(late, model)
    assert model2.found == model.found
    model, _ = chat.update(thread_list.ClearSearch(), model)
    assert model.found is None and model.query == ""
    model, fx = chat.update(thread_list.SetQuery("x"), model)
    model, fx = chat.update(fx[0].msg, model)
    model, _ = chat.update(effects_of(fx, Http)[0].on_ok({"threads": [], "messages": []}), model)
    assert "Nothing found" in text_of(thread_list.side(model))


def _idle_thread():
    model, _ = opened()
    msgs = [{"id": "u1", "seq": 1, "role": "user", "content": "one", "run_id": None},
            {"id": "a1", "seq": 2, "role": "assistant", "content": "answer one", "run_id": "r0"},
            {"id": "u2", "seq": 3, "role": "user", "content": "two", "run_id": None},
            {"id": "a2", "seq": 4, "role": "assistant", "content": "answer two", "run_id": "r1"}]
    model, _ = chat.update(chat.GotThread({"id": T, "title": "C", "messages": msgs}), model)
    return model


def test_regenerate_removes_the_last_answer_and_follows_the_new_run():
    model = _idle_thread()
    button = find(chat.view(model), "button", text="Regenerate answer")
    model, fx = chat.update(button.attrs["onclick"], model)
    http = effects_of(fx, Http)[0]
    assert (http.method, http.url) == ("POST", "/api/threads/t1/regenerate")
    assert [m["id"] for m in model.messages] == ["u1", "a1", "u2"]
    assert not find_all(chat.view(model), "button", text="Regenerate answer")      # one at a time
    refused, _ = chat.update(http.on_err(ApiError(409, "run_in_progress", "wait")), model)
    assert [m["id"] for m in refused.messages] == ["u1", "a1", "u2", "a2"] and refused.error == "wait"
    model, _ = chat.update(http.on_ok({"id": "r2", "status": "queued", "input_message_id": "u2"}), model)
    assert model.runs["r2"] == "queued" and model.run_inputs["r2"] == "u2"
    # the event (here or from another tab) removes the same messages once more: nothing changes
    model = live(model, ev(20, "messages.removed", run_id="r2", from_seq=4),
                 ev(21, "run.queued", run_id="r2", agent_id="a"))
    assert [m["id"] for m in model.messages] == ["u1", "a1", "u2"]


def test_edit_a_message_and_run_again():
    model = _idle_thread()
    tree = chat.view(model)
    edits = find_all(tree, "button", **{"aria-label": "Edit message"})
    assert len(edits) == 2                                       # on the user's messages only
    model, _ = chat.update(edits[0].attrs["onclick"], model)
    form = find(chat.view(model), "form", **{"aria-label": "Edit your message"})
    assert find(form, "textarea").attrs["value"] == "one"
    model, _ = chat.update(controls.SetEditText("ONE"), model)
    model, fx = chat.update(controls.SaveEdit(), model)
    http = effects_of(fx, Http)[0]
    assert (http.url, http.body) == ("/api/threads/t1/messages/u1/edit", {"content": "ONE"})
    assert [(m["content"], m.get("pending")) for m in model.messages] == [("ONE", True)]
    model, _ = chat.update(http.on_ok({"id": "r3", "status": "queued", "input_message_id": "u9"}), model)
    model = live(model, ev(30, "messages.removed", run_id="r3", from_seq=1))
    assert [(m["id"], m["content"]) for m in model.messages] == [("u9", "ONE")]
    # another tab's edit: the messages from its seq on go
    other = live(_idle_thread(), ev(40, "messages.removed", run_id="r4", from_seq=3))
    assert [m["id"] for m in other.messages] == ["u1", "a1"]


def test_each_answer_shows_its_time_and_tokens():
    model, _ = opened()
    model, _ = chat.update(transcript.GotRuns({"runs": [
        {"id": "r0", "thread_id": T, "status": "succeeded", "input_message_id": "u1", "prompt_tokens": 30,
         "completion_tokens": 12, "started_at": "2026-01-01T10:00:00.000Z", "finished_at": "2026-01-01T10:00:02.500Z"}]}),
        model)
    msgs = [{"id": "u1", "seq": 1, "role": "user", "content": "q", "run_id": None},
            {"id": "a1", "seq": 2, "role": "assistant", "content": "a", "run_id": "r0"}]
    model, _ = chat.update(chat.GotThread({"id": T, "title": "U", "messages": msgs}), model)
    assert text_of(find(chat.view(model), "li", **{"class": "msg note usage"})) == "2.5 s · 30 + 12 tokens"
    # a live run: its events' times and run.succeeded's tokens
    start = ev(10, "run.queued", run_id="r1", agent_id="a")
    started = dict(ev(11, "run.started", run_id="r1", resumed=False), at="2026-01-01T10:01:00.000Z")
    done = dict(ev(12, "run.succeeded", run_id="r1", prompt_tokens=50, completion_tokens=7),
                at="2026-01-01T10:01:01.200Z")
    model = live(model, start, started, done)
    assert run_usage.line(model.usage["r1"]) == "1.2 s · 50 + 7 tokens"


def test_a_regenerated_answers_run_leaves_the_view_with_its_usage_line():
    model = _idle_thread()
    model, _ = chat.update(transcript.GotRuns({"runs": [
        {"id": "r1", "thread_id": T, "status": "succeeded", "input_message_id": "u2", "prompt_tokens": 3,
         "completion_tokens": 2, "started_at": "2026-01-01T10:00:00.000Z",
         "finished_at": "2026-01-01T10:00:01.000Z"}]}), model)
    assert "r1" in model.runs
    model, fx = chat.update(controls.Regenerate(), model)
    model, _ = chat.update(effects_of(fx, Http)[0].on_ok({"id": "r2", "status": "queued", "input_message_id": "u2"}),
                           model)
    assert "r1" not in model.runs and model.runs["r2"] == "queued"
    # the same when the event comes first (another tab regenerated)
    other = _idle_thread()
    other, _ = chat.update(transcript.GotRuns({"runs": [{"id": "r1", "thread_id": T, "status": "succeeded",
                                                         "input_message_id": "u2"}]}), other)
    other = live(other, ev(20, "messages.removed", run_id="r2", from_seq=4))
    assert "r1" not in other.runs

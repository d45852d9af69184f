"""The runs page: table, status filter in the URL, live updates from thread topics."""

import runs
from runtime import Http, Navigate, ApiError, Every, KnowUser, Connected, Disconnected, Live
from fmt import iso_ms
from kit import find, find_all, text_of, fire, effects_of


def run(i, status="succeeded", thread="t1", **kw):
    r = {"id": "r%d-aaaaaaaa" % i, "thread_id": thread, "status": status, "created_at": "2026-01-01T00:00:%02dZ" % i,
         "started_at": "2026-01-01T00:00:%02dZ" % i, "finished_at": None, "prompt_tokens": 10, "completion_tokens": 5,
         "model": "gpt-test", "error": None}
    r.update(kw)
    return r


def loaded(rs, status=None, online=True):
    model, fx = runs.init({"status": status} if status else {})
    if online:
        model, _ = runs.update(Connected(False), model)
    model, fx = runs.update(runs.GotRuns({"runs": rs, "next": None}), model)
    return model, fx


def test_init_filters_from_the_url():
    model, fx = runs.init({"status": "failed"})
    assert fx[0].url == "/api/runs?limit=100&status=failed"
    model, fx = runs.init({"status": "bogus"})
    assert fx[0].url == "/api/runs?limit=100" and model.status is None


def test_table_and_filter():
    model, fx = loaded([run(2, finished_at="2026-01-01T00:00:04Z"), run(1, "failed", error={"code": "x", "message": "boom"})])
    tree = runs.view(model)
    table = find(tree, "table", aria_label="Runs")
    assert len(find_all(table, "tr")) == 3
    assert "Succeeded" in text_of(table) and "2.0 s" in text_of(table) and "15" in text_of(table) and "boom" in text_of(table)
    msg = fire(find(tree, "select", id="runs-filter"), "change", "failed")
    model, fx = runs.update(msg, model)
    assert effects_of(fx, Navigate)[0].path == "/runs?status=failed"
    assert find(tree, "label", "Status").attrs["for"] == "runs-filter"


def test_follows_each_thread_once_and_resumes_from_cursors():
    model, _ = runs.init({})
    assert runs.subscriptions(model) == {}                   # nothing before the list is known
    model, fx = loaded([run(1, thread="t1"), run(2, thread="t2"), run(3, thread="t1")])
    assert fx == [] and runs.subscriptions(model) == {"threads/t1": None, "threads/t2": None}
    model, _ = runs.update(Live({"op": "subscribed", "topic": "threads/t1", "seq": 7}), model)
    model, _ = runs.update(event(8, "run.started", run(1)["id"], thread="t2"), model)
    # after a drop each topic is asked for again from the last seq seen on it
    assert runs.subscriptions(model) == {"threads/t1": 7, "threads/t2": 8}
    model, _ = runs.update(Disconnected(), model)
    assert "Not live" in text_of(runs.view(model))
    model, _ = runs.update(Connected(True), model)
    assert runs.subscriptions(model) == {"threads/t1": 7, "threads/t2": 8} and "Live" in text_of(runs.view(model))


def event(seq, kind, run_id, thread="t1", **data):
    data.update(run_id=run_id, thread_id=thread)
    return Live({"op": "event", "topic": "threads/" + thread, "seq": seq, "type": kind,
                      "at": "2026-01-01T00:01:00Z", "data": data})


def test_live_status_tokens_and_new_runs():
    r = run(1, "running")
    model, _ = loaded([r])
    model, _ = runs.update(event(5, "run.succeeded", r["id"], prompt_tokens=100, completion_tokens=20), model)
    row = model.runs[0]
    assert row["status"] == "succeeded" and row["completion_tokens"] == 20 and row["finished_at"]
    assert "120" in text_of(runs.view(model))
    # replayed again: ignored
    model2, fx = runs.update(event(5, "run.failed", r["id"]), model)
    assert model2.runs[0]["status"] == "succeeded"
    # an unknown run in a followed thread is fetched and shown on top
    model, fx = runs.update(event(6, "run.queued", "r9-new", agent_id="a"), model)
    assert fx[0].url == "/api/runs/r9-new"
    model, _ = runs.update(fx[0].on_ok(run(9, "queued", id="r9-new")), model)
    assert model.runs[0]["id"] == "r9-new"


def test_filtered_table_drops_runs_that_leave_the_filter():
    r = run(1, "running")
    model, _ = loaded([r], status="running")
    model, _ = runs.update(event(5, "run.succeeded", r["id"], prompt_tokens=1, completion_tokens=1), model)
    assert model.runs == []
    model, _ = runs.update(runs.GotRun(run(2, "failed")), model)
    assert model.runs == []


def test_active_durations_tick():
    model, _ = loaded([run(1, "succeeded")])
    assert runs.clocks(model) == []                  # nothing going: no clock
    model, _ = loaded([run(1, "running", started_at="2026-01-01T00:00:00Z")])
    [clock] = runs.clocks(model)
    assert clock.ms == 1000 and clock.to_msg(5) == runs.Tick(5)
    model, _ = runs.update(runs.Tick(iso_ms("2026-01-01T00:00:30Z")), model)
    assert "30.0 s" in text_of(runs.view(model))


def test_empty_and_error_states():
    model, _ = loaded([], status="failed")
    assert "No failed runs." in text_of(runs.view(model))
    model, _ = runs.init({})
    assert "Loading" in text_of(runs.view(model))
    model, _ = runs.update(runs.LoadFailed(ApiError(500, "internal", "Something broke.")), model)
    assert find(runs.view(model), "p", "Something broke.", role="alert")


def test_workflow_runs_are_followed_on_their_own_topic_and_link_to_the_workflow():
    wf = run(3, "running", thread="x", thread_id=None, workflow_id="w1", kind="workflow")
    done = run(4, "succeeded", thread="x", thread_id=None, workflow_id="w1", kind="workflow")
    model, fx = loaded([wf, done])
    assert runs.subscriptions(model) == {"runs/" + wf["id"]: None}
    link = find(runs.view(model), "a", aria_label="Workflow run r3-aaaaa")
    assert link.attrs["href"] == "/workflows/w1?run=" + wf["id"]
    model, _ = runs.update(Live({"op": "event", "topic": "runs/" + wf["id"], "seq": 9, "type": "run.succeeded",
                                      "at": "2026-01-01T00:01:00Z",
                                      "data": {"run_id": wf["id"], "prompt_tokens": 1, "completion_tokens": 2}}), model)
    assert model.runs[0]["status"] == "succeeded"


def test_a_reconnect_reloads_the_list_and_resumes_topics():
    model, fx = loaded([run(1, thread="t1")], online=False)
    model, fx = runs.update(Connected(False), model)
    assert fx == []                                  # the first connection: the list is fresh
    model, _ = runs.update(Live({"op": "subscribed", "topic": "threads/t1", "seq": 3}), model)
    model, _ = runs.update(Disconnected(), model)
    model, fx = runs.update(Connected(True), model)
    assert [e.url for e in effects_of(fx, Http)] == ["/api/runs?limit=100"]
    assert runs.subscriptions(model) == {"threads/t1": 3}
    model, fx = runs.update(fx[-1].on_ok({"runs": [run(2, thread="t2"), run(1, thread="t1")]}), model)
    assert runs.subscriptions(model) == {"threads/t2": None, "threads/t1": 3}


def test_the_users_topic_brings_runs_started_anywhere():
    model, fx = loaded([run(1, thread="t1")])
    model, fx = runs.update(KnowUser("u1"), model)
    assert fx == [] and list(runs.subscriptions(model)) == ["users/u1", "threads/t1"]
    # a run in a thread the page does not follow, announced on users/u1, is fetched and shown
    ev = Live({"op": "event", "topic": "users/u1", "seq": 3, "type": "run.queued", "at": "x",
                    "data": {"run_id": "r7-other", "thread_id": "t9", "agent_id": "a"}})
    model, fx = runs.update(ev, model)
    assert fx[0].url == "/api/runs/r7-other"
    model, fx = runs.update(fx[0].on_ok(run(7, "queued", id="r7-other", thread="t9")), model)
    assert model.runs[0]["id"] == "r7-other"
    assert runs.subscriptions(model) == {"users/u1": 3, "threads/t9": None, "threads/t1": None}
    # account events on the same topic are not runs: ignored
    model2, fx = runs.update(Live({"op": "event", "topic": "users/u1", "seq": 4, "type": "token.revoked",
                                        "at": "x", "data": {"token_id": "k"}}), model)
    assert fx == [] and model2.runs == model.runs
    # another user's topic is not followed, its events are dropped
    model3, fx = runs.update(Live({"op": "event", "topic": "users/u2", "seq": 9, "type": "run.queued",
                                        "at": "x", "data": {"run_id": "zz", "thread_id": None}}), model)
    assert fx == [] and model3.runs == model.runs

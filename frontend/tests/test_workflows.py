"""The workflows page: JSON definition saved with the server's pointers shown, typed inputs,
a run's steps followed live, approvals answered inline."""

import json

import app
import workflows as wf
import workflow_run
from runtime import Http, Navigate, ApiError, Live, Connected, Disconnected
from kit import find, find_all, text_of, fire, effects_of

DEF = {"name": "Review", "inputs": {"topic": {"type": "string"}, "count": {"type": "number", "required": False},
                                    "loud": {"type": "boolean"}},
       "start": "draft", "steps": {"draft": {"kind": "agent", "agent_id": "a1", "input": "x", "next": "ok"},
                                   "ok": {"kind": "approval", "prompt": "Go?", "on_approve": "end"},
                                   "end": {"kind": "tool", "tool": "current_time", "arguments": {}}}}
W = {"id": "w1", "version": 2, "name": "Review", "definition": DEF, "created_at": "", "updated_at": ""}


def test_list_page_starts_from_an_example_with_your_agent():
    model, fx = wf.init((None, {}))
    assert [e.url for e in fx] == ["/api/agents?limit=200", "/api/workflows?limit=200"]
    model, _ = wf.update(fx[0].on_ok({"agents": [{"id": "a9", "name": "Helper"}]}), model)
    model, _ = wf.update(fx[1].on_ok({"workflows": [W]}), model)
    assert json.loads(model.source)["steps"]["draft"]["agent_id"] == "a9"
    tree = wf.view(model)
    assert find(tree, "a", "Review").attrs["href"] == "/workflows/w1"
    assert find(tree, "label", "Definition (JSON)").attrs["for"] == "wf-definition"
    model, fx = wf.update(fire(find(tree, "form", aria_labelledby="wf-editor"), "submit"), model)
    assert fx[0].method == "POST" and fx[0].body["definition"]["name"] == "Draft and review"
    model, fx = wf.update(fx[0].on_ok(dict(W, id="w2")), model)
    assert fx == [Navigate("/workflows/w2")]


def test_bad_json_and_server_problems_are_listed():
    model, _ = wf.init((None, {}))
    model, _ = wf.update(wf.SetSource("{nope"), model)
    model, fx = wf.update(wf.Save(), model)
    assert fx == [] and "not valid JSON" in text_of(find(wf.view(model), "div", role="alert"))
    model, _ = wf.update(wf.SetSource("[1]"), model)
    model, fx = wf.update(wf.Save(), model)
    assert "must be a JSON object" in text_of(wf.view(model))
    model, _ = wf.update(wf.SetSource(json.dumps(DEF)), model)
    model, fx = wf.update(wf.Save(), model)
    err = ApiError(422, "validation_failed", "bad", {"errors": [
        {"pointer": "/definition/steps/draft/next", "message": "no step named 'ok2'"},
        {"pointer": "/definition/steps/x", "message": "unreachable from start"}]})
    model, _ = wf.update(fx[0].on_err(err), model)
    alert = text_of(find(wf.view(model), "div", role="alert"))
    assert "/definition/steps/draft/next" in alert and "unreachable from start" in alert
    assert find(wf.view(model), "textarea", id="wf-definition").attrs["aria-invalid"] == "true"


def test_pretty_json_round_trips():
    assert json.loads(wf.pretty(DEF)) == DEF
    assert wf.pretty({"b": [], "a": {}}) == '{\n  "a": {},\n  "b": []\n}'


def opened(run_id=None):
    model, fx = wf.init(("w1", {"run": run_id} if run_id else {}))
    urls = [e.url for e in fx if isinstance(e, Http)]
    assert "/api/workflows/w1" in urls and "/api/runs?kind=workflow&limit=100" in urls
    model, _ = wf.update(wf.GotWorkflow(W), model)
    return model, fx


def test_inputs_are_typed_and_required():
    model, _ = opened()
    tree = wf.view(model)
    assert find(tree, "label", "count (optional)") and find(tree, "select", id="wf-input-loud")
    model, fx = wf.update(wf.Start(), model)
    assert fx == [] and find(wf.view(model), "p", "Required.", id="wf-input-topic-error")
    model, _ = wf.update(fire(find(wf.view(model), "input", id="wf-input-topic"), "input", "cats"), model)
    model, _ = wf.update(wf.SetInput("count", "three"), model)
    model, fx = wf.update(wf.Start(), model)
    assert fx == [] and "Enter a number." in text_of(wf.view(model))
    model, _ = wf.update(wf.SetInput("count", "3"), model)
    model, _ = wf.update(wf.SetInput("loud", "true"), model)
    model, fx = wf.update(wf.Start(), model)
    assert fx[0].url == "/api/workflows/w1/runs" and fx[0].body == {"input": {"topic": "cats", "count": 3, "loud": True}}
    err = ApiError(422, "validation_failed", "bad", {"errors": [{"pointer": "/input/topic", "message": "too long"}]})
    model, _ = wf.update(fx[0].on_err(err), model)
    assert "too long" in text_of(wf.view(model))


def ev(seq, type_, **data):
    data.setdefault("run_id", "r1")
    return Live({"op": "event", "topic": "runs/r1", "seq": seq, "type": type_, "at": "", "data": data})


def test_a_run_is_followed_live_and_approved_inline():
    model, _ = opened()
    model, fx = wf.update(wf.Started({"id": "r1", "status": "queued", "workflow_id": "w1"}), model)
    assert wf.subscriptions(model) == {"runs/r1": None}          # live from now: a snapshot follows
    assert effects_of(fx, Navigate)[0].path == "/workflows/w1?run=r1"
    model, fx = wf.update(Live({"op": "subscribed", "topic": "runs/r1", "seq": 10}), model)
    assert fx[0].url == "/api/runs/r1"
    for e in (ev(11, "run.started", resumed=False), ev(12, "step.started", step="draft", kind="agent", attempt=1),
              ev(13, "step.succeeded", step="draft", kind="agent", attempt=1, output="A draft.", duration_ms=1200,
                 output_truncated=False),
              ev(14, "step.waiting", step="ok", prompt="Go?\nA draft."), ev(15, "run.waiting", question="Go?")):
        model, _ = wf.update(e, model)
    tree = wf.view(model)
    steps = find(tree, "table", aria_label="Steps")
    assert "A draft." in text_of(steps) and "1.2 s" in text_of(steps)
    form = find(tree, "form", aria_label="Approval")
    assert "Go?" in text_of(form)
    model, _ = wf.update(fire(find(form, "textarea"), "input", "fine"), model)
    model, fx = wf.update(fire(find(wf.view(model), "form", aria_label="Approval"), "submit"), model)
    assert fx[0].url == "/api/runs/r1/resume" and fx[0].body == {"answer": {"approved": True, "comment": "fine"}}
    model, _ = wf.update(fx[0].on_ok({"id": "r1", "status": "running"}), model)
    assert not find_all(wf.view(model), "form", aria_label="Approval")
    # a replayed event changes nothing; the end fetches the whole run
    model2, fx = wf.update(ev(13, "step.failed", step="draft", kind="agent", attempt=1, error="x"), model)
    assert model2.steps == model.steps and fx == []
    model, fx = wf.update(ev(16, "run.succeeded", prompt_tokens=1, completion_tokens=1), model)
    assert fx[0].url == "/api/runs/r1" and model.run["status"] == "succeeded"


def test_reject_cancel_and_resume():
    model, _ = opened("r1")
    model, _ = wf.update(workflow_run.GotRun({"id": "r1", "status": "waiting_for_input", "waiting_prompt": "Go?",
                                    "steps": [{"step": "ok", "kind": "approval", "status": "waiting", "attempt": 1}]}), model)
    assert find(wf.view(model), "form", aria_label="Approval")
    model, fx = wf.update(fire(find(wf.view(model), "button", "Reject"), "click"), model)
    assert fx[0].body == {"answer": {"approved": False}}
    model, _ = wf.update(fx[0].on_err(ApiError(409, "conflict", "Already answered.")), model)
    assert "Already answered." in text_of(wf.view(model))
    model, fx = wf.update(fire(find(wf.view(model), "button", "Cancel run"), "click"), model)
    assert fx[0].url == "/api/runs/r1/cancel"
    model, _ = wf.update(workflow_run.GotRun({"id": "r1", "status": "interrupted", "steps": []}), model)
    model, _ = wf.update(workflow_run.Decided({"id": "r1", "status": "interrupted"}), model)
    model, fx = wf.update(fire(find(wf.view(model), "button", "Resume run"), "click"), model)
    assert fx[0].url == "/api/runs/r1/resume" and fx[0].body is None


def test_reconnect_resumes_from_the_cursor():
    model, _ = opened("r1")
    assert wf.subscriptions(model) == {"runs/r1": None}
    model, _ = wf.update(workflow_run.GotRun({"id": "r1", "status": "running", "steps": []}), model)
    model, _ = wf.update(ev(20, "step.started", step="draft", kind="agent", attempt=1), model)
    model, fx = wf.update(Disconnected(), model)
    assert fx == [] and wf.subscriptions(model) == {"runs/r1": 20}
    model, fx = wf.update(Connected(True), model)
    assert fx == [] and wf.subscriptions(model) == {"runs/r1": 20}
    # the list page follows nothing
    assert wf.subscriptions(wf.init((None, {}))[0]) == {}


def test_a_cursor_too_old_for_the_log_fetches_the_run_and_follows_it_live():
    model, _ = opened("r1")
    model, _ = wf.update(ev(20, "step.started", step="draft", kind="agent", attempt=1), model)
    expired = {"op": "error", "topic": "runs/r1", "code": "cursor_expired", "message": "x", "floor": 90}
    model, fx = wf.update(Live(expired), model)
    assert [e.url for e in fx] == ["/api/runs/r1"] and wf.subscriptions(model) == {"runs/r1": None}


def test_starting_a_run_records_it_in_the_url_without_reloading_the_page():
    model, _ = app.init("/workflows/w1")
    model, _ = app.update(app.GotMe({"user": {"id": "u", "email": "e", "name": "", "role": "member"}}), model)
    model, _ = app.update(wf.GotWorkflow(W), model)
    model, _ = app.update(wf.SetInput("topic", "cats"), model)
    model, fx = app.update(wf.Started({"id": "r1", "status": "queued", "workflow_id": "w1"}), model)
    model, fx = app.update(app.UrlChanged("/workflows/w1?run=r1"), model)
    assert fx == [] and model.sub.inputs == {"topic": "cats"} and model.sub.run_id == "r1"
    model, _ = app.update(ev(5, "run.succeeded", prompt_tokens=1, completion_tokens=1), model)
    assert model.sub.runs[0]["status"] == "succeeded"
    assert "Succeeded" in text_of(find(wf.view(model.sub), "section", aria_labelledby="wf-runs-title"))


def test_step_duration_from_the_snapshot_times():
    model, _ = opened("r1")
    model, _ = wf.update(workflow_run.GotRun({"id": "r1", "status": "succeeded", "steps": [
        {"step": "a", "kind": "agent", "status": "succeeded", "attempt": 1, "started_at": "2026-01-01T00:00:00Z",
         "finished_at": "2026-01-01T00:00:01.5Z", "output": "x"}]}), model)
    assert "1.5 s" in text_of(find(wf.view(model), "table", aria_label="Steps"))

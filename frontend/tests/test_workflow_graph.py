"""The workflow drawn: the layout of a definition (layers, branches, parallel joins, cycles and
broken definitions), the SVG with each step's state from the run's events, a step's details
from a click or from Enter / Space on it, and the save's problems pinned to their steps."""

import json

import app
import workflows as wf
import workflow_run
import workflow_diagram
from workflow_graph import layout, step_of
from runtime import Live, ApiError, CodeLoaded, Http
from kit import find, find_all, text_of, fire

FULL = {"name": "Ship", "start": "plan", "steps": {
    "plan": {"kind": "agent", "agent_id": "a1", "input": "Plan {{ input.topic }}", "next": "route"},
    "route": {"kind": "branch", "cases": [{"when": "input.big", "next": "fan"}], "default": "quick"},
    "quick": {"kind": "tool", "tool": "current_time", "arguments": {}, "next": "review"},
    "fan": {"kind": "parallel", "steps": ["left", "right"], "next": "review"},
    "left": {"kind": "agent", "agent_id": "a1", "input": "L"},
    "right": {"kind": "tool", "tool": "current_time", "arguments": {}},
    "review": {"kind": "approval", "prompt": "Ship?", "on_approve": "done"},
    "done": {"kind": "agent", "agent_id": "a1", "input": "Done"}}}


def by_id(lay):
    return {n.id: n for n in lay.nodes}


def test_layers_go_down_from_the_start_and_a_branch_fans_out():
    lay = layout(FULL)
    n = by_id(lay)
    assert n["plan"].start and n["plan"].layer == 0 and n["route"].layer == 1
    assert n["fan"].layer == n["quick"].layer == 2            # the cases side by side under the branch
    assert n["fan"].y == n["quick"].y and n["fan"].x != n["quick"].x
    assert n["left"].layer == n["right"].layer == 3
    assert n["fan-join"].kind == "join" and n["fan-join"].layer == 4 and n["fan-join"].group == "fan"
    assert n["review"].layer == 5 and n["done"].layer == 6    # after the longest way in
    assert n["left"].group == "fan" and n["plan"].group is None
    edges = {(e.src, e.dst): e for e in lay.edges}
    assert edges[("route", "fan")].label == "case 1" and edges[("route", "quick")].label == "default"
    assert edges[("review", "done")].label == "approve"
    assert ("left", "fan-join") in edges and ("right", "fan-join") in edges and ("fan-join", "review") in edges
    assert not any(e.back for e in lay.edges)
    # every node inside the drawing, none overlapping another
    for a in lay.nodes:
        assert 0 <= a.x and a.x + a.w <= lay.width and 0 <= a.y and a.y + a.h <= lay.height
        for b in lay.nodes:
            if a is not b and a.layer == b.layer:
                assert a.x + a.w <= b.x or b.x + b.w <= a.x
    # the long way from quick to review bends round the members, through way points of its own
    long = edges[("quick", "review")]
    assert len(long.via) == 2 and long.path.count(" C") == 3
    assert all(not x.id.startswith("\x00") for x in lay.nodes)


def test_cycles_self_loops_and_broken_definitions_still_draw():
    loop = {"start": "a", "steps": {"a": {"kind": "agent", "next": "b"}, "b": {"kind": "approval", "on_approve": "a",
                                                                               "on_reject": "b"}}}
    lay = layout(loop)
    n = by_id(lay)
    assert n["a"].layer == 0 and n["b"].layer == 1
    back = [(e.src, e.dst) for e in lay.edges if e.back]
    assert sorted(back) == [("b", "a"), ("b", "b")]
    assert layout(None).nodes == [] and layout([1, 2]).nodes == [] and layout({"steps": "x"}).nodes == []
    broken = layout({"start": "nowhere", "steps": {"a": {"kind": "agent", "next": "ghost"}, "b": 7,
                                                   "c": {"kind": "teleport"}, "d": {"kind": "branch", "cases": [3]}}})
    n = by_id(broken)
    assert n["ghost"].kind == "missing" and n["c"].kind == "unknown" and "b" not in n and "d" in n
    assert not any(x.start for x in broken.nodes)
    # a parallel group that lists itself, and one with no members, do not hang or vanish
    odd = layout({"start": "p", "steps": {"p": {"kind": "parallel", "steps": ["p"]}, "q": {"kind": "parallel"}}})
    assert {"p", "p-join", "q", "q-join"} <= set(by_id(odd))
    # a big cyclic definition lays out in bounded time
    big = {"start": "s0", "steps": {"s%d" % i: {"kind": "agent", "next": "s%d" % ((i * 7 + 3) % 60)} for i in range(60)}}
    assert len(layout(big).nodes) == 60


def test_pointers_name_their_step():
    assert step_of("/definition/steps/draft/next") == "draft" and step_of("/steps/x") == "x"
    assert step_of("/steps/a~1b~0c/input") == "a/b~c"
    assert step_of("/start") is None and step_of("") is None and step_of(None) is None and step_of("/steps/") is None


def _page(definition=FULL):
    model, _ = wf.init(("w1", {}))
    model, _ = wf.update(wf.GotWorkflow({"id": "w1", "version": 1, "name": "Ship", "definition": definition}), model)
    return model


def _svg_step(tree, name):
    return find(tree, "g", data_step=name)


def ev(seq, type_, **data):
    data.setdefault("run_id", "r1")
    return Live({"op": "event", "topic": "runs/r1", "seq": seq, "type": type_, "at": "", "data": data})


def test_the_drawing_is_svg_with_every_step_a_button():
    tree = wf.view(_page())
    svg = find(tree, "svg", **{"class": "wf-graph"})
    assert svg.attrs["viewBox"].startswith("0 0 ")
    steps = [g for g in find_all(svg, "g") if g.attrs.get("data-step")]
    assert {g.attrs["data-step"] for g in steps} == set(FULL["steps"]) | {"fan-join"}
    for g in steps:
        if g.attrs["data-step"] == "fan-join":
            assert "tabindex" not in g.attrs          # the join is not a step: nothing to show
            continue
        assert g.attrs["tabindex"] == "0" and g.attrs["role"] == "button" and g.attrs["data-step"] in g.attrs["aria-label"]
    assert "k-approval" in _svg_step(tree, "review").attrs["class"]
    assert find(_svg_step(tree, "review"), "rect").attrs["rx"] == 22      # drawn as a pill
    assert find(_svg_step(tree, "route"), "polygon")                     # a branch as a hexagon
    assert find(_svg_step(tree, "plan"), "circle", **{"class": "start"})
    assert "st-" not in _svg_step(tree, "plan").attrs["class"]            # no run shown: no states


def test_steps_light_up_as_the_run_goes_and_the_untaken_way_is_skipped():
    model = _page()
    model, _ = wf.update(wf.Started({"id": "r1", "status": "queued", "workflow_id": "w1"}), model)
    model, _ = wf.update(Live({"op": "subscribed", "topic": "runs/r1", "seq": 10}), model)
    state = lambda m, s: _svg_step(wf.view(m), s).attrs["data-state"]  # noqa: E731
    assert state(model, "plan") == "pending"
    model, _ = wf.update(ev(11, "run.started", resumed=False), model)
    model, _ = wf.update(ev(12, "step.started", step="plan", kind="agent", attempt=1, started_at="",
                            input="Plan cats"), model)
    assert state(model, "plan") == "running" and "st-running" in _svg_step(wf.view(model), "plan").attrs["class"]
    shown = text_of(find(wf.view(wf.update(wf.workflow_run.SelectStep("plan"), model)[0]), "section",
                         aria_labelledby="wf-step-title"))
    assert "Plan cats" in shown and "Input (as defined)" not in shown          # what it was given, live
    model, _ = wf.update(ev(13, "step.succeeded", step="plan", kind="agent", attempt=1, output="P",
                            duration_ms=5, output_truncated=False), model)
    model, _ = wf.update(ev(14, "step.succeeded", step="route", kind="branch", attempt=1, output="fan",
                            duration_ms=0, output_truncated=False), model)
    model, _ = wf.update(ev(15, "step.started", step="fan", kind="parallel", attempt=1, started_at=""), model)
    model, _ = wf.update(ev(16, "step.retrying", step="left", kind="agent", attempt=1, error="busy",
                            retry_in_seconds=1), model)
    assert state(model, "plan") == "succeeded" and state(model, "left") == "running" and state(model, "fan") == "running"
    taken = [p for p in find_all(wf.view(model), "path") if "taken" in p.attrs.get("class", "")]
    assert len(taken) >= 2
    for seq, step in ((17, "left"), (18, "right"), (19, "fan")):
        model, _ = wf.update(ev(seq, "step.succeeded", step=step, kind="agent", attempt=2, output="x",
                                duration_ms=1, output_truncated=False), model)
    assert state(model, "fan-join") == "succeeded"
    model, _ = wf.update(ev(20, "step.waiting", step="review", prompt="Ship?"), model)
    assert state(model, "review") == "waiting" and state(model, "quick") == "pending"
    assert [x for x in model.steps if x["step"] == "review"][0]["kind"] == "approval"   # step.waiting names none
    model, _ = wf.update(ev(21, "run.failed", code="x", message="no"), model)
    assert state(model, "quick") == "skipped" and state(model, "done") == "skipped"


def test_a_click_or_enter_or_space_on_a_step_shows_its_details():
    model = _page()
    model, _ = wf.update(workflow_run.GotRun({"id": "r1", "status": "succeeded", "steps": [
        {"step": "plan", "kind": "agent", "status": "succeeded", "attempt": 2, "started_at": "2026-01-01T00:00:00Z",
         "finished_at": "2026-01-01T00:00:01.500Z", "output": "The plan.", "error": None, "input": "Plan cats",
         "prompt_tokens": 3, "completion_tokens": 4}]}), model.but(run_id="r1"))
    tree = wf.view(model)
    assert "Choose a step" in text_of(find(tree, "section", **{"class": "card wf-diagram"}))
    model, _ = wf.update(fire(_svg_step(tree, "plan"), "click"), model)
    details = find(wf.view(model), "section", aria_labelledby="wf-step-title")
    shown = text_of(details)
    for want in ("plan", "agent step", "Succeeded", "Attempts2", "1.5 s", "Plan cats", "The plan.", "Tokens7"):
        assert want in shown, (want, shown)
    assert _svg_step(wf.view(model), "plan").attrs["aria-pressed"] == "true"
    model, _ = wf.update(fire(find(details, "button", "Close"), "click"), model)
    assert model.selected is None
    key = lambda k: fire(_svg_step(wf.view(model), "review"), "keydown", key=k)  # noqa: E731
    assert key("a") is None
    for k in ("Enter", " "):
        model, _ = wf.update(key(k), model.but(selected=None))
        shown = text_of(find(wf.view(model), "section", aria_labelledby="wf-step-title"))
        assert "review" in shown and "not run" in shown and "Ship?" in shown    # its prompt as defined


def test_a_save_problem_points_at_its_step_in_the_drawing():
    model = _page()
    model, _ = wf.update(wf.SetSource(json.dumps(dict(FULL, steps=dict(FULL["steps"], quick=dict(
        FULL["steps"]["quick"], next="nowhere"))))), model)
    tree = wf.view(model)
    assert find(tree, "g", data_step="nowhere").attrs["class"].startswith("node k-missing")   # drawn while typing
    model, fx = wf.update(wf.Save(), model)
    model, _ = wf.update(fx[0].on_err(ApiError(422, "validation_failed", "bad", {"errors": [
        {"pointer": "/definition/steps/quick/next", "message": "unknown step 'nowhere'"},
        {"pointer": "/definition/start", "message": "odd"}]})), model)
    tree = wf.view(model)
    quick = _svg_step(tree, "quick")
    assert "invalid" in quick.attrs["class"] and "unknown step 'nowhere'" in quick.attrs["aria-label"]
    assert "invalid" not in _svg_step(tree, "plan").attrs["class"]
    listed = find(tree, "ul", aria_label="Problems at steps")
    assert "quick: unknown step 'nowhere'" in text_of(listed)
    model, _ = wf.update(fire(find(listed, "button", "quick"), "click"), model)
    assert "unknown step 'nowhere'" in text_of(find(wf.view(model), "ul", role="alert"))


def test_what_cannot_be_drawn_says_so():
    model = _page({"name": "x", "steps": {}})
    assert "no steps" in text_of(workflow_diagram.view(model))
    model, _ = wf.update(wf.SetSource("{broken"), _page())
    assert find(wf.view(model), "g", data_step="plan")       # the saved definition, while the text is broken


def test_the_page_waits_for_its_modules_then_shows():
    # the workflows page is built apart (build.py LAZY): until it is in, the app says it is loading
    model, _ = app.init("/agents")
    model = model.but(page="workflows", sub=("w1", {}), loading=True, url="/workflows/w1")
    assert "Loading…" in text_of(find(app.view(model), "main"))
    model, fx = app.update(CodeLoaded(), model)
    assert not model.loading and isinstance(model.sub, wf.Model) and model.sub.workflow_id == "w1"
    assert "/api/workflows/w1" in [e.url for e in fx if isinstance(e, Http)]
    assert app.update(CodeLoaded(), model) == (model, [])        # once in, nothing more to do

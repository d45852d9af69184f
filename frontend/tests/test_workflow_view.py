"""Zoom and pan of the workflow drawing (workflow_view.py): the viewBox math, pure, and the
messages and handlers that drive it; and a step's attempts kept live from its events."""

import workflows as wf
import workflow_run
import workflow_view as zv
import workflow_diagram
from runtime import Live
from kit import find, find_all, text_of, fire

W, H = 200, 1000   # a tall drawing (a long chain of steps)


def close(a, b):
    return abs(a - b) < 1e-6


def test_fitted_is_the_whole_drawing_and_zoom_stays_in_bounds():
    assert zv.view_box(None, W, H) == (0, 0, W, H) and zv.view_box_attr(None, W, H) == "0 0 200 1000"
    v = zv.zoomed(None, W, H, 2)
    assert v == (2, 100, 500) and zv.view_box(v, W, H) == (50, 250, 100, 500)
    assert zv.zoomed(v, W, H, 0.5) is None and zv.zoomed(None, W, H, 0.5) is None   # never past fitted
    far = None
    for _ in range(40):
        far = zv.zoomed(far, W, H, zv.STEP)
    assert far[0] == zv.MAX_ZOOM
    assert zv.settle(1, 10, 10, W, H) is None
    # the part shown stays inside the drawing however far the centre is pushed
    assert zv.settle(2, -500, 5000, W, H) == (2, 50, 750)
    assert zv.view_box_attr((3, 100, 500), W, H) == "66.67 333.33 66.67 333.33"


def test_the_point_under_the_pointer_stays_put_when_zooming_there():
    box = (400, 500)       # wider than the drawing's shape: meet centres it with bars left and right
    s = zv.scale(None, W, H, *box)
    assert close(s, 0.5)
    assert zv.point_at(None, W, H, box[0], box[1], 200, 250) == (100, 500)      # the middle
    assert zv.point_at(None, W, H, box[0], box[1], 150, 0) == (0, 0)            # the drawing's corner
    at = zv.point_at(None, W, H, box[0], box[1], 170, 100)
    v = zv.zoomed(None, W, H, 2, at)
    again = zv.point_at(v, W, H, box[0], box[1], 170, 100)
    assert close(again[0], at[0]) and close(again[1], at[1]), (at, again)


def test_a_drag_moves_the_drawing_with_the_pointer():
    box = (400, 500)
    v = (4, 100, 500)
    s = zv.scale(v, W, H, *box)                 # 2 px a unit
    moved = zv.panned(v, W, H, 0, -100, *box)   # dragged up 100 px: shows 50 units further down
    assert close(s, 2) and moved == (4, 100, 550)
    assert zv.panned(None, W, H, 30, 30, *box) is None     # fitted: nothing to pan to


def _page(n=40):
    steps = {}
    for i in range(n):
        steps["s%d" % i] = {"kind": "tool", "tool": "calculator", "arguments": {"expression": "1"}}
        if i + 1 < n:
            steps["s%d" % i]["next"] = "s%d" % (i + 1)
    model, _ = wf.init(("w1", {}))
    model, _ = wf.update(wf.GotWorkflow({"id": "w1", "version": 1, "name": "Long",
                                         "definition": {"name": "Long", "start": "s0", "steps": steps}}), model)
    return model


class _Rect:
    left, top, width, height = 10, 20, 400, 560


class _El:
    def closest(self, sel):
        return self

    def getBoundingClientRect(self):
        return _Rect()


class _Pointer:
    def __init__(self, x, y, buttons=1, ctrl=False, delta=0):
        self.clientX, self.clientY, self.buttons, self.button = x, y, buttons, 0
        self.ctrlKey, self.metaKey, self.deltaY = ctrl, False, delta
        self.target = _El()
        self.prevented = False

    def preventDefault(self):
        self.prevented = True


def test_buttons_keys_drag_and_wheel_change_the_view_through_the_page():
    model = _page()
    svg = find(wf.view(model), "svg", **{"class": "wf-graph"})
    lay = workflow_diagram.layout_of(model)
    assert svg.attrs["viewBox"] == "0 0 %d %d" % (lay.width, lay.height)     # fitted on load
    assert svg.attrs["height"] == workflow_diagram.MAX_HEIGHT and svg.attrs["width"] == "100%"
    tree = wf.view(model)
    model, _ = wf.update(fire(find(tree, "button", aria_label="Zoom in"), "click"), model)
    assert model.view[0] == zv.STEP and find(wf.view(model), "span", data_zoom="125")
    canvas = find(wf.view(model), "div", **{"class": "wf-canvas"})
    for key, zoom in (("+", zv.STEP ** 2), ("-", zv.STEP), ("=", zv.STEP ** 2)):
        model, _ = wf.update(fire(canvas, "keydown", key=key), model)
        assert close(model.view[0], zoom), (key, model.view)
    before = model.view
    model, _ = wf.update(fire(canvas, "keydown", key="ArrowDown"), model)
    assert model.view[2] > before[2] and model.view[1] == before[1]
    assert fire(canvas, "keydown", key="a") is None
    # a key on a focused step zooms too, Enter still opens it
    step = find(wf.view(model), "g", data_step="s3")
    model, _ = wf.update(fire(step, "keydown", key="0"), model)
    assert model.view is None
    # ctrl + wheel zooms at the pointer; a plain wheel leaves the page to scroll
    h = svg.attrs
    plain = _Pointer(200, 300, delta=-100)
    assert h["onwheel"](plain) is None and not plain.prevented
    wheel = _Pointer(210, 300, ctrl=True, delta=-100)
    model, _ = wf.update(h["onwheel"](wheel), model)
    assert wheel.prevented and close(model.view[0], zv.STEP)
    # a drag pans; the click that ends it does not open a step
    model, _ = wf.update(zv.Zoom(4, lay.width, lay.height), model)
    y0 = model.view[2]
    model, _ = wf.update(h["onpointerdown"](_Pointer(100, 400)), model)
    model, _ = wf.update(h["onpointermove"](_Pointer(100, 300)), model)
    assert model.view[2] > y0 and model.dragged
    assert h["onpointermove"](_Pointer(100, 250, buttons=0)) is None        # hovering draws nothing
    model, _ = wf.update(h["onpointerup"](_Pointer(100, 300, buttons=0)), model)
    model, _ = wf.update(fire(find(wf.view(model), "g", data_step="s3"), "click"), model)
    assert model.selected is None and model.drag is None
    model, _ = wf.update(fire(find(wf.view(model), "g", data_step="s3"), "click"), model)
    assert model.selected == "s3"
    model, _ = wf.update(fire(find(wf.view(model), "button", "Fit"), "click"), model)
    assert model.view is None


def ev(seq, type_, **data):
    data.setdefault("run_id", "r1")
    return Live({"op": "event", "topic": "runs/r1", "seq": seq, "type": type_, "at": "", "data": data})


def test_a_steps_attempts_are_listed_latest_first_and_kept_live():
    model = _page(2)
    model, _ = wf.update(wf.Started({"id": "r1", "status": "queued", "workflow_id": "w1"}), model)
    model, _ = wf.update(Live({"op": "subscribed", "topic": "runs/r1", "seq": 10}), model)
    t0, t1, t2, t3 = ("2026-01-01T00:00:0%dZ" % i for i in range(4))
    model, _ = wf.update(ev(11, "step.started", step="s0", kind="tool", attempt=1, started_at=t0), model)
    model, _ = wf.update(ev(12, "step.retrying", step="s0", kind="tool", attempt=1, error="busy", retry_in_seconds=1,
                            started_at=t0, finished_at=t1, duration_ms=1000), model)
    model, _ = wf.update(ev(13, "step.started", step="s0", kind="tool", attempt=2, started_at=t2), model)
    (s0,) = [s for s in model.steps if s["step"] == "s0"]
    assert [(a["attempt"], a["status"]) for a in s0["attempts"]] == [(1, "failed"), (2, "running")]
    model, _ = wf.update(workflow_run.SelectStep("s0"), model)
    items = find_all(find(wf.view(model), "section", **{"class": "wf-attempts"}), "li")
    assert [i.attrs["data-attempt"] for i in items] == ["2", "1"]           # latest first
    assert "busy" in text_of(items[1]) and "1.0 s" in text_of(items[1]) and "Failed" in text_of(items[1])
    model, _ = wf.update(ev(14, "step.succeeded", step="s0", kind="tool", attempt=2, started_at=t2, finished_at=t3,
                            duration_ms=500, output="1", output_truncated=False), model)
    items = find_all(find(wf.view(model), "section", **{"class": "wf-attempts"}), "li")
    assert items[0].attrs["data-status"] == "succeeded" and "500 ms" in text_of(items[0])
    assert "Attempts2" in text_of(find(wf.view(model), "section", aria_labelledby="wf-step-title"))
    # a step retried past the server's cap keeps the last ones, as the server does
    attempts = []
    for i in range(30):
        attempts = workflow_run.next_attempts(attempts, "step.started", {"started_at": t0})
        attempts = workflow_run.next_attempts(attempts, "step.failed", {"error": "e%d" % i})
    assert len(attempts) == workflow_run.ATTEMPTS_KEPT and attempts[-1]["attempt"] == 30
    assert attempts[-1]["error"] == "e29" and attempts[0]["attempt"] == 11

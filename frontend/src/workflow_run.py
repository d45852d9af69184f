"""One workflow run, followed live on the workflows page: its steps from step.* events on
`runs/{id}` (after a snapshot over REST), its status, an approval answered inline, cancel and
resume; and the panel that shows it. The page's model holds the fields below (run_id, run,
steps, waiting, comment, busy, cursor, runs, error, selected); the page's update table hands the
messages declared here to `update`."""

from runtime import Update, Http, Live, h, memo, text_of
from ui import ACTIVE, EVENT_STATUS, alert, badge, note, table, typed
from workflow_definition import pretty
import fmt

STEP_STATUS = {"step.started": "running", "step.succeeded": "succeeded", "step.retrying": "retrying",
               "step.failed": "failed", "step.waiting": "waiting"}


def topic(model):
    return "runs/" + model.run_id if model.run_id else None


def subscriptions(model):
    """runs/<id> of the run shown, from the last seq seen (live only until the first snapshot)."""
    return {topic(model): model.cursor} if model.run_id else {}


def run_request(run_id):
    return Http("GET", "/api/runs/" + run_id, None, GotRun, RunUnavailable)


def with_run(runs, run):
    """The list of recent runs with run's status in it."""
    return [dict(r, status=run.get("status", r.get("status"))) if r["id"] == run.get("id") else r for r in runs]


def _number(value):
    return value if type(value) in (int, float) and value >= 0 else None


def _step_from_event(kind, data):
    attempt = data.get("attempt")
    out = {"step": data.get("step"), "kind": text_of(data.get("kind")) or ("approval" if kind == "step.waiting" else ""),
           "status": STEP_STATUS[kind],
           "attempt": attempt if type(attempt) is int and attempt > 0 else 1}
    if kind == "step.succeeded":
        out["output"] = data.get("output")
        out["duration_ms"] = _number(data.get("duration_ms"))
    elif kind in ("step.failed", "step.retrying"):
        out["error"] = text_of(data.get("error")) or "failed"
        out["duration_ms"] = _number(data.get("duration_ms"))
    elif kind == "step.waiting":
        out["output"] = None
        out["input"] = data.get("prompt")
    elif kind == "step.started":
        out["input"] = data.get("input")
    return out


ATTEMPTS_KEPT = 20   # as the server keeps (store/steps.py)


def next_attempts(attempts, kind, data):
    """A step's attempts (oldest first, numbered in start order as the API numbers them) after one
    of its events: a start or a wait opens an attempt, an outcome closes the open one."""
    out = list(attempts or ())
    last = out[-1] if out else None
    is_open = last is not None and last.get("status") in ("running", "waiting")
    number = (last.get("attempt") or 0) + 1 if last else 1
    if kind in ("step.started", "step.waiting"):
        if kind == "step.waiting" and is_open:
            out[-1] = dict(last, status="waiting")
        else:
            out.append({"attempt": number, "status": "running" if kind == "step.started" else "waiting",
                        "started_at": text_of(data.get("started_at")) or None, "finished_at": None,
                        "error": None, "output": None})
        return out[-ATTEMPTS_KEPT:]
    done = {"status": "succeeded" if kind == "step.succeeded" else "failed",
            "finished_at": text_of(data.get("finished_at")) or None, "duration_ms": _number(data.get("duration_ms")),
            "error": None if kind == "step.succeeded" else (text_of(data.get("error")) or "failed"),
            "output": data.get("output") if kind == "step.succeeded" else None}
    if is_open:
        out[-1] = dict(last, **done)
    else:   # a step with no start of its own (a branch), or its start came before the snapshot
        out.append(dict(done, attempt=number, started_at=text_of(data.get("started_at")) or None))
    return out[-ATTEMPTS_KEPT:]


def _put_step(steps, step):
    out, found = [], False
    for s in steps:
        if s["step"] == step["step"]:
            merged = dict(s)
            merged.update({k: v for k, v in step.items() if v is not None or k == "output"})
            out.append(merged)
            found = True
        else:
            out.append(s)
    return out if found else out + [step]


def apply_event(model, data):
    """One event of runs/<id>: (model, effects); events already seen are ignored."""
    seq = data["seq"]
    if model.cursor is not None and seq <= model.cursor:
        return model
    kind, ev = data.get("type"), data["data"]
    m = model.but(cursor=seq)
    if kind in STEP_STATUS:
        if not isinstance(ev.get("step"), str):
            return m
        step = _step_from_event(kind, ev)
        before = next((s for s in m.steps if s["step"] == ev["step"]), None) or {}
        step["attempts"] = next_attempts(before.get("attempts"), kind, ev)
        m = m.but(steps=_put_step(m.steps, step))
        if kind == "step.waiting":
            m = m.but(waiting={"step": ev["step"], "prompt": text_of(ev.get("prompt"))})
        return m
    status = EVENT_STATUS.get(kind)
    if not status or m.run is None:
        return m
    run = dict(m.run, status=status)
    if status == "failed":
        run["error"] = {"code": str(ev.get("code") or "failed"), "message": text_of(ev.get("message"))}
    changes = {"run": run, "busy": False, "runs": with_run(m.runs, run)}
    if status != "waiting_for_input":
        changes["waiting"] = None
    if status == "waiting_for_input" and m.waiting is None:
        changes["waiting"] = {"step": "", "prompt": text_of(ev.get("question"))}
    m = m.but(**changes)
    if status in ("succeeded", "failed"):
        return m, [run_request(m.run_id)]      # the final output and every step's, whole
    return m


on = Update()
update = on.update


@on("run")
def GotRun(model, run):
    if run.get("id") != model.run_id:
        return model
    steps = [dict(s) for s in run.get("steps") or ()]
    waiting = model.waiting
    if run.get("status") == "waiting_for_input":
        waiting = waiting or {"step": next((s["step"] for s in steps if s.get("status") == "waiting"), ""),
                              "prompt": run.get("waiting_prompt") or ""}
    else:
        waiting = None
    # events may be newer than this snapshot: keep a live status the snapshot has not caught up with
    status = run.get("status")
    if model.run is not None and model.cursor is not None and model.run.get("status") != status \
            and status in ACTIVE and model.run.get("status") not in ACTIVE:
        run = dict(run, status=model.run.get("status"))
    return model.but(run=run, steps=steps or model.steps, waiting=waiting, runs=with_run(model.runs, run))


@on("error")
def RunUnavailable(model, error):
    return model.but(error=error.message)


@on("step")
def SelectStep(model, step):
    """The step whose details the drawing shows (workflow_diagram.py); None closes them."""
    return model.but(selected=step)


@on("value")
def SetComment(model, value):
    return model.but(comment=value)


def _act(model, path, body=None):
    """A cancel, resume or approval of the run shown, one at a time."""
    if model.busy or not model.run_id:
        return model
    return model.but(busy=True), [Http("POST", "/api/runs/%s/%s" % (model.run_id, path), body, Decided,
                                       ActionFailed)]


@on("approved")
def Decide(model, approved):
    answer = {"approved": approved}
    if model.comment.strip():
        answer["comment"] = model.comment.strip()
    return _act(model, "resume", {"answer": answer})


@on()
def CancelRun(model):
    return _act(model, "cancel")


@on()
def ResumeRun(model):
    return _act(model, "resume")


@on("run")
def Decided(model, run):
    return model.but(busy=False, waiting=None, comment="", run=dict(model.run or {}, status=run.get("status")))


@on("error")
def ActionFailed(model, error):
    return model.but(busy=False, error=error.message)


@on(Live)
def _live(model, data):
    if data.get("topic") != topic(model):
        return model
    if data.get("op") == "event":
        return apply_event(model, data)
    if data.get("op") == "subscribed" and model.cursor is None:
        # live from here on; the snapshot covers what happened before the subscription
        return model.but(cursor=data["seq"]), [run_request(model.run_id)]
    if data.get("op") == "error" and data.get("code") == "cursor_expired":
        return model.but(cursor=None), [run_request(model.run_id)]      # subscribe again, live only
    return model


# ---------------------------------------------------------------- view

def _show(value):
    if value is None:
        return ""
    return value if isinstance(value, str) else pretty(value)


def took(s):
    """A step's duration in ms (from its event, else its start and finish), or None."""
    if s.get("duration_ms") is not None:
        return s["duration_ms"]
    start, end = fmt.iso_ms(s.get("started_at")), fmt.iso_ms(s.get("finished_at"))
    return end - start if start is not None and end is not None else None


def _step_row(s):
    out = s.get("error") or _show(s.get("output"))
    took_ms = took(s)
    return h("tr", {"data-status": s.get("status", "")}, [
        h("th", {"scope": "row"}, s.get("step", "")),
        h("td", {}, s.get("kind", "")),
        h("td", {}, badge(s.get("status", ""))),
        h("td", {"class": "num"}, str(s.get("attempt", 1))),
        h("td", {"class": "num"}, fmt.duration(took_ms) if took_ms is not None else "—"),
        h("td", {"class": "wide"}, h("pre", {"class": "out"}, out) if out else ""),
    ])


def _approval(model):
    waiting = model.waiting
    return h("form", {"class": "msg ask", "aria-label": "Approval", "onsubmit": Decide(True)}, [
        h("p", {"class": "question"}, ["Approval needed", waiting.get("step") and (" at " + waiting["step"]),
                                        ": ", h("span", {"class": "prewrap"}, waiting.get("prompt") or "")]),
        h("label", {"for": "wf-comment"}, "Comment (optional)"),
        h("textarea", {"id": "wf-comment", "rows": "2", "value": model.comment, "oninput": typed(SetComment)}),
        h("div", {"class": "row"}, [
            h("button", {"type": "submit", "disabled": model.busy}, "Approve"),
            h("button", {"type": "button", "class": "danger", "disabled": model.busy, "onclick": Decide(False)},
              "Reject")]),
    ])


def panel(model):
    """The run shown: status, error, an approval waiting, cancel / resume, and its steps."""
    run = model.run
    if run is None:
        return None
    status = run.get("status", "")
    return h("section", {"class": "card", "aria-labelledby": "wf-run-status", "data-run": run.get("id")}, [
        h("h2", {"id": "wf-run-status"}, ["Run ", h("code", {}, run["id"][:8]), " ", badge(status)]),
        alert((run.get("error") or {}).get("message")),
        model.waiting and _approval(model),
        h("div", {"class": "row"}, [
            status in ACTIVE and h("button", {"type": "button", "class": "secondary", "disabled": model.busy,
                                              "onclick": CancelRun()}, "Cancel run"),
            status == "interrupted" and h("button", {"type": "button", "disabled": model.busy,
                                                     "onclick": ResumeRun()}, "Resume run"),
        ]),
        table("Steps", ("Step", "Kind", "Status", "Attempt", "Took", "Output"),
              [memo(_step_row, s, key=s.get("step")) for s in model.steps], "stack")
        if model.steps else note("No step has started yet."),
    ])

"""The workflows page: your workflows; one workflow's definition (JSON, validated by the
server with every problem pointed at), a form for its inputs to start a run, and that
run's steps live over the WebSocket (runs/{id}), approvals answered inline."""

import json

from runtime import Msg, Http, Navigate, Send, h, memo, text_of, Record, key_for
import fmt

ACTIVE = ("queued", "running", "waiting_for_input")
EVENT_STATUS = {"run.queued": "queued", "run.started": "running", "run.waiting": "waiting_for_input",
                "run.succeeded": "succeeded", "run.failed": "failed", "run.cancelled": "cancelled",
                "run.interrupted": "interrupted"}
STEP_STATUS = {"step.started": "running", "step.succeeded": "succeeded", "step.retrying": "retrying",
               "step.failed": "failed", "step.waiting": "waiting"}


class Msg(Msg):
    pass


class GotWorkflows(Msg):
    def __init__(self, body):
        self.body = body


class GotWorkflow(Msg):
    def __init__(self, workflow):
        self.workflow = workflow


class GotAgents(Msg):
    def __init__(self, body):
        self.body = body


class LoadFailed(Msg):
    def __init__(self, error):
        self.error = error


class SetSource(Msg):
    def __init__(self, value):
        self.value = value


class Save(Msg):
    pass


class Saved(Msg):
    def __init__(self, workflow):
        self.workflow = workflow


class SaveFailed(Msg):
    def __init__(self, error):
        self.error = error


class SetInput(Msg):
    def __init__(self, name, value):
        self.name, self.value = name, value


class Start(Msg):
    pass


class Started(Msg):
    def __init__(self, run):
        self.run = run


class StartFailed(Msg):
    def __init__(self, error):
        self.error = error


class GotRun(Msg):
    def __init__(self, run):
        self.run = run


class GotRuns(Msg):
    def __init__(self, body):
        self.body = body


class SetComment(Msg):
    def __init__(self, value):
        self.value = value


class Decide(Msg):
    def __init__(self, approved):
        self.approved = approved


class Decided(Msg):
    def __init__(self, run):
        self.run = run


class ActionFailed(Msg):
    def __init__(self, error):
        self.error = error


class CancelRun(Msg):
    pass


class ResumeRun(Msg):
    pass


class Connected(Msg):
    pass


class Disconnected(Msg):
    pass


class Live(Msg):
    def __init__(self, data):
        self.data = data


class Model(Record):
    def __init__(self, workflow_id=None, run_id=None, online=False):
        self.workflow_id = workflow_id
        self.online = online
        self.workflows = None          # the list (list view); None while loading
        self.workflow = None           # the open workflow
        self.agents = []
        self.source = ""               # the definition being edited, as JSON text
        self.problems = []             # [(pointer, message)] from the last save
        self.saving = False
        self.saved = False
        self.inputs = {}               # input name -> text typed
        self.input_errors = {}         # input name -> message
        self.run_id = run_id
        self.run = None                # the followed run (dict as in the API, status kept live)
        self.steps = []                # [{step, kind, status, attempt, output, error, duration_ms}] in start order
        self.waiting = None            # {step, prompt} of an approval that waits
        self.comment = ""
        self.busy = False
        self.runs = []                 # recent runs of this workflow
        self.cursor = None             # last seq seen on runs/<run_id>
        self.subscribed = None         # the topic asked for on this socket
        self.error = None
        self.idem = None               # (Idempotency-Key, request) of the last create or start: a resend reuses it


def example(agent_id):
    """A first workflow to edit: one agent step, an approval, one more agent step."""
    return {"name": "Draft and review", "description": "Draft a text, ask a person, then polish it.",
            "inputs": {"topic": {"type": "string", "description": "What to write about"}},
            "start": "draft",
            "steps": {"draft": {"kind": "agent", "agent_id": agent_id or "<an agent id>",
                                "input": "Write three sentences about {{ input.topic }}.", "next": "review"},
                      "review": {"kind": "approval", "prompt": "Publish this draft?\n{{ steps.draft.output }}",
                                 "on_approve": "polish"},
                      "polish": {"kind": "agent", "agent_id": agent_id or "<an agent id>",
                                 "input": "Polish: {{ steps.draft.output }}"}}}


def pretty(value):
    """JSON with two-space indents and sorted keys (MicroPython's json has no indent)."""
    return _pretty(value, "")


def _pretty(v, pad):
    inner = pad + "  "
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{\n" + ",\n".join(inner + json.dumps(k) + ": " + _pretty(v[k], inner) for k in _order(v)) + "\n" + pad + "}"
    if isinstance(v, list):
        if not v:
            return "[]"
        return "[\n" + ",\n".join(inner + _pretty(x, inner) for x in v) + "\n" + pad + "]"
    return json.dumps(v)


def _order(d):
    first = [k for k in ("name", "description", "kind", "inputs", "start", "steps") if k in d]
    return first + sorted(k for k in d if k not in first)


def run_request(run_id):
    return Http("GET", "/api/runs/" + run_id, None, GotRun, LoadFailed)


def init(arg, online=False):
    workflow_id, query = arg if isinstance(arg, tuple) else (arg, {})
    run_id = (query or {}).get("run")
    model = Model(workflow_id, run_id, online)
    effects = [Http("GET", "/api/agents?limit=200", None, GotAgents, LoadFailed)]
    if workflow_id is None:
        effects.append(Http("GET", "/api/workflows?limit=200", None, GotWorkflows, LoadFailed))
    else:
        effects.append(Http("GET", "/api/workflows/" + workflow_id, None, GotWorkflow, LoadFailed))
        effects.append(Http("GET", "/api/runs?kind=workflow&limit=100", None, GotRuns, lambda e: GotRuns({})))
        if run_id:
            effects.append(run_request(run_id))
    return model, effects


def same_page(model, arg):
    """True when a URL change only records what the page already shows (a run it started)."""
    workflow_id, query = arg if isinstance(arg, tuple) else (arg, {})
    return workflow_id == model.workflow_id and (query or {}).get("run") == model.run_id


def _with_run(runs, run):
    return [dict(r, status=run.get("status", r.get("status"))) if r["id"] == run.get("id") else r for r in runs]


def topic(model):
    return "runs/" + model.run_id if model.run_id else None


def follow(model):
    """Subscribe to the followed run (from the cursor after a drop); unsubscribe from an old one."""
    t = topic(model)
    if not model.online or t == model.subscribed:
        return model, []
    effects = []
    if model.subscribed:
        effects.append(Send({"op": "unsubscribe", "topic": model.subscribed}))
    if t:
        message = {"op": "subscribe", "topic": t}
        if model.cursor is not None:
            message["after"] = model.cursor
        effects.append(Send(message))
    return model.but(subscribed=t), effects


def leave(model):
    if model.online and model.subscribed:
        return [Send({"op": "unsubscribe", "topic": model.subscribed})]
    return []


def parse_source(source):
    """(definition, None) or (None, why the text is not a JSON object)."""
    try:
        value = json.loads(source)
    except ValueError as exc:
        return None, "The definition is not valid JSON (%s)." % (exc.args[0] if exc.args else "syntax error")
    if not isinstance(value, dict):
        return None, "The definition must be a JSON object."
    return value, None


def coerce_inputs(spec, typed):
    """({name: value}, {name: message}) from the text typed for each declared input."""
    values, errors = {}, {}
    for name in sorted(spec or {}):
        kind = (spec[name] or {}).get("type", "string")
        text = (typed.get(name) or "").strip()
        required = (spec[name] or {}).get("required", True)
        if kind == "boolean":
            values[name] = typed.get(name) == "true"
            continue
        if not text:
            if required:
                errors[name] = "Required."
            continue
        if kind == "number":
            try:
                values[name] = float(text) if "." in text or "e" in text.lower() else int(text)
            except ValueError:
                errors[name] = "Enter a number."
        else:
            values[name] = typed.get(name)
    return values, errors


def _number(value):
    return value if type(value) in (int, float) and value >= 0 else None


def _step_from_event(kind, data, at):
    attempt = data.get("attempt")
    out = {"step": data.get("step"), "kind": text_of(data.get("kind")), "status": STEP_STATUS[kind],
           "attempt": attempt if type(attempt) is int and attempt > 0 else 1}
    if kind == "step.succeeded":
        out["output"] = data.get("output")
        out["duration_ms"] = _number(data.get("duration_ms"))
    elif kind in ("step.failed", "step.retrying"):
        out["error"] = text_of(data.get("error")) or "failed"
        out["duration_ms"] = _number(data.get("duration_ms"))
    elif kind == "step.waiting":
        out["output"] = None
    return out


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
    seq = data.get("seq")
    if type(seq) is not int or not isinstance(data.get("data"), dict):
        return model, []
    if model.cursor is not None and seq <= model.cursor:
        return model, []
    kind, ev = data.get("type"), data["data"]
    m = model.but(cursor=seq)
    if kind in STEP_STATUS:
        if not isinstance(ev.get("step"), str):
            return m, []
        m = m.but(steps=_put_step(m.steps, _step_from_event(kind, ev, data.get("at"))))
        if kind == "step.waiting":
            m = m.but(waiting={"step": ev["step"], "prompt": text_of(ev.get("prompt"))})
        return m, []
    status = EVENT_STATUS.get(kind)
    if status and m.run is not None:
        run = dict(m.run, status=status)
        if status == "failed":
            run["error"] = {"code": str(ev.get("code") or "failed"), "message": text_of(ev.get("message"))}
        changes = {"run": run, "busy": False, "runs": _with_run(m.runs, run)}
        if status != "waiting_for_input":
            changes["waiting"] = None
        if status == "waiting_for_input" and m.waiting is None:
            changes["waiting"] = {"step": "", "prompt": text_of(ev.get("question"))}
        m = m.but(**changes)
        if status in ("succeeded", "failed"):
            return m, [run_request(m.run_id)]      # the final output and every step's, whole
    return m, []


def update(msg, model):
    if isinstance(msg, GotWorkflows):
        return model.but(workflows=msg.body.get("workflows") or []), []
    if isinstance(msg, GotAgents):
        agents = msg.body.get("agents") or []
        m = model.but(agents=agents)
        if model.workflow_id is None and not model.source:
            m = m.but(source=pretty(example(agents[0]["id"] if agents else None)))
        return m, []
    if isinstance(msg, GotWorkflow):
        w = msg.workflow
        return model.but(workflow=w, source=pretty(w.get("definition") or {}), problems=[]), []
    if isinstance(msg, LoadFailed):
        return model.but(error=msg.error.message, workflows=model.workflows or []), []
    if isinstance(msg, SetSource):
        return model.but(source=msg.value, saved=False), []
    if isinstance(msg, Save):
        if model.saving:
            return model, []
        definition, why = parse_source(model.source)
        if why:
            return model.but(problems=[("", why)]), []
        body = {"definition": definition}
        if model.workflow_id:
            return model.but(saving=True, problems=[]), [Http("PATCH", "/api/workflows/" + model.workflow_id, body,
                                                              Saved, SaveFailed)]
        idem = key_for(model.idem, ("workflow", body))
        return model.but(saving=True, problems=[], idem=idem), [
            Http("POST", "/api/workflows", body, Saved, SaveFailed, key=idem[0])]
    if isinstance(msg, Saved):
        m = model.but(saving=False, saved=True, workflow=msg.workflow, problems=[], idem=None)
        if model.workflow_id is None:
            return m, [Navigate("/workflows/" + msg.workflow["id"])]
        return m, []
    if isinstance(msg, SaveFailed):
        problems = [(e.get("pointer") or "", e.get("message") or "is invalid")
                    for e in msg.error.details.get("errors") or ()] or [("", msg.error.message)]
        return model.but(saving=False, problems=problems), []
    if isinstance(msg, SetInput):
        inputs = dict(model.inputs)
        inputs[msg.name] = msg.value
        errors = dict(model.input_errors)
        errors.pop(msg.name, None)
        return model.but(inputs=inputs, input_errors=errors), []
    if isinstance(msg, Start):
        spec = ((model.workflow or {}).get("definition") or {}).get("inputs") or {}
        values, errors = coerce_inputs(spec, model.inputs)
        if errors or model.busy:
            return model.but(input_errors=errors), []
        body = {"input": values}
        idem = key_for(model.idem, ("run", model.workflow_id, body))
        return model.but(busy=True, error=None, idem=idem), [
            Http("POST", "/api/workflows/%s/runs" % model.workflow_id, body, Started, StartFailed, key=idem[0])]
    if isinstance(msg, Started):
        m = model.but(busy=False, run_id=msg.run["id"], run=msg.run, steps=[], waiting=None, cursor=None, idem=None,
                      runs=[msg.run] + [r for r in model.runs if r["id"] != msg.run["id"]])
        m, fx = follow(m)
        return m, fx + [Navigate("/workflows/%s?run=%s" % (model.workflow_id, msg.run["id"]), replace=True)]
    if isinstance(msg, StartFailed):
        errors = {}
        for e in msg.error.details.get("errors") or ():
            name = (e.get("pointer") or "").split("/")
            if len(name) >= 3 and name[1] == "input":
                errors[name[2]] = e.get("message")
        return model.but(busy=False, input_errors=errors, error=None if errors else msg.error.message), []
    if isinstance(msg, GotRuns):
        runs = [r for r in msg.body.get("runs") or () if r.get("workflow_id") == model.workflow_id]
        return model.but(runs=runs), []
    if isinstance(msg, GotRun):
        run = msg.run
        if run.get("id") != model.run_id:
            return model, []
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
        m = model.but(run=run, steps=steps or model.steps, waiting=waiting, runs=_with_run(model.runs, run))
        return follow(m)
    if isinstance(msg, SetComment):
        return model.but(comment=msg.value), []
    if isinstance(msg, Decide):
        if model.busy or not model.run_id:
            return model, []
        answer = {"approved": msg.approved}
        if model.comment.strip():
            answer["comment"] = model.comment.strip()
        return model.but(busy=True), [Http("POST", "/api/runs/%s/resume" % model.run_id, {"answer": answer},
                                           Decided, ActionFailed)]
    if isinstance(msg, Decided):
        return model.but(busy=False, waiting=None, comment="", run=dict(model.run or {}, **{"status": msg.run.get("status")})), []
    if isinstance(msg, ActionFailed):
        return model.but(busy=False, error=msg.error.message), []
    if isinstance(msg, CancelRun):
        if model.busy or not model.run_id:
            return model, []
        return model.but(busy=True), [Http("POST", "/api/runs/%s/cancel" % model.run_id, None, Decided, ActionFailed)]
    if isinstance(msg, ResumeRun):
        if model.busy or not model.run_id:
            return model, []
        return model.but(busy=True), [Http("POST", "/api/runs/%s/resume" % model.run_id, None, Decided, ActionFailed)]
    if isinstance(msg, Connected):
        return follow(model.but(online=True, subscribed=None))
    if isinstance(msg, Disconnected):
        return model.but(online=False, subscribed=None), []
    if isinstance(msg, Live):
        data = msg.data
        if data.get("topic") != topic(model):
            return model, []
        if data.get("op") == "event":
            return apply_event(model, data)
        if data.get("op") == "subscribed" and model.cursor is None and type(data.get("seq")) is int:
            # live from here on; the snapshot covers what happened before the subscription
            return model.but(cursor=data.get("seq")), [run_request(model.run_id)]
        if data.get("op") == "error" and data.get("code") == "cursor_expired":
            m = model.but(cursor=None, subscribed=None)
            m, fx = follow(m)
            return m, [run_request(model.run_id)] + fx
    return model, []


# ---------------------------------------------------------------- view

LABELS = {"queued": "Queued", "running": "Running", "waiting_for_input": "Waiting for you", "succeeded": "Succeeded",
          "failed": "Failed", "cancelled": "Cancelled", "interrupted": "Interrupted", "retrying": "Retrying",
          "waiting": "Waiting"}
STATUS_CLASS = {"retrying": "waiting_for_input", "waiting": "waiting_for_input"}


def _badge(status):
    return h("span", {"class": "status s-" + STATUS_CLASS.get(status, status)}, LABELS.get(status, status))


def _show(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return pretty(value)


def _workflow_row(w):
    d = w.get("definition") or {}
    return h("li", {"class": "agent"}, [
        h("div", {}, [h("a", {"href": "/workflows/" + w["id"]}, h("strong", {}, w.get("name") or d.get("name", ""))),
                      h("span", {"class": "muted"}, " · v%d · %d steps" % (w.get("version", 1), len(d.get("steps") or {})))]),
    ])


def _editor(model, title):
    problems = model.problems
    return h("form", {"class": "card", "onsubmit": Save(), "aria-labelledby": "wf-editor"}, [
        h("h2", {"id": "wf-editor"}, title),
        h("div", {"class": "field" + (" invalid" if problems else "")}, [
            h("label", {"for": "wf-definition"}, "Definition (JSON)"),
            h("textarea", {"id": "wf-definition", "class": "mono", "rows": "18", "spellcheck": "false",
                           "value": model.source, "oninput": _set_source,
                           "aria-invalid": "true" if problems else None,
                           "aria-describedby": "wf-problems" if problems else None}),
        ]),
        problems and h("div", {"class": "alert", "role": "alert", "id": "wf-problems"}, [
            h("p", {}, "The workflow was not saved:"),
            h("ul", {}, [h("li", {}, [h("code", {}, p) if p else None, " " + m if p else m]) for p, m in problems])]),
        model.saved and h("p", {"class": "muted", "role": "status"}, "Saved as version %d." % model.workflow.get("version", 1)),
        h("button", {"type": "submit", "disabled": model.saving}, "Saving…" if model.saving else "Save workflow"),
    ])


def _set_source(ev):
    return SetSource(ev.target.value)


def _inputs_form(model):
    spec = ((model.workflow or {}).get("definition") or {}).get("inputs") or {}
    fields = []
    for name in sorted(spec):
        s = spec[name] or {}
        fid = "wf-input-" + name
        err = model.input_errors.get(name)
        if s.get("type") == "boolean":
            control = h("select", {"id": fid, "onchange": lambda ev, n=name: SetInput(n, ev.target.value)}, [
                h("option", {"value": "false", "selected": model.inputs.get(name) != "true"}, "No"),
                h("option", {"value": "true", "selected": model.inputs.get(name) == "true"}, "Yes")])
        else:
            control = h("input", {"id": fid, "type": "text", "inputmode": "decimal" if s.get("type") == "number" else None,
                                  "value": model.inputs.get(name, ""), "aria-invalid": "true" if err else None,
                                  "aria-describedby": (fid + "-error") if err else None,
                                  "oninput": lambda ev, n=name: SetInput(n, ev.target.value)})
        fields.append(h("div", {"class": "field" + (" invalid" if err else "")}, [
            h("label", {"for": fid}, name + ("" if s.get("required", True) else " (optional)")),
            s.get("description") and h("p", {"class": "muted small"}, s["description"]),
            control,
            err and h("p", {"class": "field-error", "id": fid + "-error"}, err)]))
    return h("form", {"class": "card", "onsubmit": Start(), "aria-labelledby": "wf-run-title"}, [
        h("h2", {"id": "wf-run-title"}, "Run it"),
        fields or h("p", {"class": "muted"}, "This workflow takes no input."),
        h("button", {"type": "submit", "disabled": model.busy}, "Start run"),
    ])


def _took(s):
    if s.get("duration_ms") is not None:
        return s["duration_ms"]
    start, end = fmt.iso_ms(s.get("started_at")), fmt.iso_ms(s.get("finished_at"))
    return end - start if start is not None and end is not None else None


def _step_row(s):
    out = s.get("error") or _show(s.get("output"))
    took = _took(s)
    return h("tr", {"data-status": s.get("status", "")}, [
        h("th", {"scope": "row"}, s.get("step", "")),
        h("td", {}, s.get("kind", "")),
        h("td", {}, _badge(s.get("status", ""))),
        h("td", {"class": "num"}, str(s.get("attempt", 1))),
        h("td", {"class": "num"}, fmt.duration(took) if took is not None else "—"),
        h("td", {"class": "wide"}, h("pre", {"class": "out"}, out) if out else ""),
    ])


def _run_panel(model):
    run = model.run
    if run is None:
        return None
    status = run.get("status", "")
    err = run.get("error") or {}
    return h("section", {"class": "card", "aria-labelledby": "wf-run-status", "data-run": run.get("id")}, [
        h("h2", {"id": "wf-run-status"}, ["Run ", h("code", {}, run["id"][:8]), " ", _badge(status)]),
        err.get("message") and h("p", {"class": "alert", "role": "alert"}, err.get("message")),
        model.waiting and h("form", {"class": "msg ask", "aria-label": "Approval", "onsubmit": Decide(True)}, [
            h("p", {"class": "question"}, ["Approval needed", model.waiting.get("step") and (" at " + model.waiting["step"]),
                                            ": ", h("span", {"class": "prewrap"}, model.waiting.get("prompt") or "")]),
            h("label", {"for": "wf-comment"}, "Comment (optional)"),
            h("textarea", {"id": "wf-comment", "rows": "2", "value": model.comment,
                           "oninput": lambda ev: SetComment(ev.target.value)}),
            h("div", {"class": "row"}, [
                h("button", {"type": "submit", "disabled": model.busy}, "Approve"),
                h("button", {"type": "button", "class": "danger", "disabled": model.busy, "onclick": Decide(False)},
                  "Reject")]),
        ]),
        h("div", {"class": "row"}, [
            status in ACTIVE and h("button", {"type": "button", "class": "secondary", "disabled": model.busy,
                                              "onclick": CancelRun()}, "Cancel run"),
            status == "interrupted" and h("button", {"type": "button", "disabled": model.busy,
                                                     "onclick": ResumeRun()}, "Resume run"),
        ]),
        h("div", {"class": "table-wrap"}, h("table", {"aria-label": "Steps", "class": "stack"}, [
            h("thead", {}, h("tr", {}, [h("th", {"scope": "col"}, c) for c in
                                        ("Step", "Kind", "Status", "Attempt", "Took", "Output")])),
            h("tbody", {}, [memo(_step_row, s, key=s.get("step")) for s in model.steps]),
        ])) if model.steps else h("p", {"class": "muted"}, "No step has started yet."),
    ])


def _runs_list(model):
    if not model.runs:
        return None
    return h("section", {"class": "card", "aria-labelledby": "wf-runs-title"}, [
        h("h2", {"id": "wf-runs-title"}, "Recent runs"),
        h("ul", {"class": "plain"}, [h("li", {"key": r["id"]}, [
            h("a", {"href": "/workflows/%s?run=%s" % (model.workflow_id, r["id"]),
                    "aria-current": "true" if r["id"] == model.run_id else None}, r["id"][:8]), " ",
            _badge(r.get("status", "")), h("span", {"class": "muted"}, " " + fmt.when(r.get("created_at")))])
            for r in model.runs[:20]]),
    ])


def view(model):
    if model.workflow_id is None:
        if model.workflows is None:
            listing = h("p", {"class": "muted"}, "Loading workflows…")
        elif model.workflows:
            listing = h("ul", {"class": "list", "aria-label": "Workflows"},
                        [memo(_workflow_row, w, key=w["id"]) for w in model.workflows])
        else:
            listing = h("p", {"class": "muted"}, "No workflows yet. Start from the example below.")
        return h("section", {"aria-labelledby": "wf-title"}, [
            h("h1", {"id": "wf-title"}, "Workflows"),
            model.error and h("p", {"class": "alert", "role": "alert"}, model.error),
            listing,
            _editor(model, "New workflow"),
        ])
    w = model.workflow
    return h("section", {"aria-labelledby": "wf-title"}, [
        h("p", {}, h("a", {"href": "/workflows"}, "← All workflows")),
        h("h1", {"id": "wf-title"}, (w or {}).get("name") or "Loading…"),
        w and (w.get("definition") or {}).get("description") and h("p", {"class": "muted"}, w["definition"]["description"]),
        model.error and h("p", {"class": "alert", "role": "alert"}, model.error),
        w and _inputs_form(model),
        _run_panel(model),
        _runs_list(model),
        w and _editor(model, "Definition · version %d" % w.get("version", 1)),
    ])

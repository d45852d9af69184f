"""The workflows page: your workflows; one workflow's definition (JSON, validated by the
server with every problem pointed at), a form for its inputs to start a run, and that run
followed live (workflow_run.py: its steps over `runs/{id}`, approvals answered inline).

The definition's text helpers are in workflow_definition.py; its drawing (the steps lit up as
the run goes, a step's details) is workflow_diagram.py. The page and its modules are built apart
from the first load (frontend/build.py LAZY): the app fetches them when the page is first shown."""

from runtime import Update, Http, Navigate, h, memo, put, Record, key_for
from ui import alert, badge, listing, note, field, described, select, typed
from workflow_definition import example, pretty, parse_source, coerce_inputs
import workflow_run
import workflow_diagram
import workflow_view
import fmt


class Model(Record):
    def __init__(self, workflow_id=None, run_id=None):
        self.workflow_id = workflow_id
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
        self.error = None
        self.selected = None           # the step whose details the drawing shows
        self.view = None               # (zoom, cx, cy) of the drawing; None: fitted (workflow_view.py)
        self.drag = None               # (x, y) of the pointer while a drag pans the drawing
        self.dragged = False           # the last press moved: its click is not a choice of step
        self.idem = None               # (Idempotency-Key, request) of the last create or start: a resend reuses it


def _arg(arg):
    workflow_id, query = arg if isinstance(arg, tuple) else (arg, {})
    return workflow_id, (query or {}).get("run")


def init(arg):
    workflow_id, run_id = _arg(arg)
    model = Model(workflow_id, run_id)
    effects = [Http("GET", "/api/agents?limit=200", None, GotAgents, LoadFailed)]
    if workflow_id is None:
        effects.append(Http("GET", "/api/workflows?limit=200", None, GotWorkflows, LoadFailed))
    else:
        effects.append(Http("GET", "/api/workflows/" + workflow_id, None, GotWorkflow, LoadFailed))
        effects.append(Http("GET", "/api/runs?kind=workflow&limit=100", None, GotRuns, lambda e: GotRuns({})))
        if run_id:
            effects.append(workflow_run.run_request(run_id))
    return model, effects


def same_page(model, arg):
    """True when a URL change only records what the page already shows (a run it started)."""
    return _arg(arg) == (model.workflow_id, model.run_id)


subscriptions = workflow_run.subscriptions

on = Update(workflow_run.on, workflow_view.on)
update = on.update


@on("body")
def GotWorkflows(model, body):
    return model.but(workflows=body.get("workflows") or [])


@on("body")
def GotAgents(model, body):
    agents = body.get("agents") or []
    m = model.but(agents=agents)
    if model.workflow_id is None and not model.source:
        m = m.but(source=pretty(example(agents[0]["id"] if agents else None)))
    return m


@on("workflow")
def GotWorkflow(model, workflow):
    return model.but(workflow=workflow, source=pretty(workflow.get("definition") or {}), problems=[])


@on("error")
def LoadFailed(model, error):
    return model.but(error=error.message, workflows=model.workflows or [])


@on("value")
def SetSource(model, value):
    return model.but(source=value, saved=False)


@on()
def Save(model):
    if model.saving:
        return model
    definition, why = parse_source(model.source)
    if why:
        return model.but(problems=[("", why)])
    body = {"definition": definition}
    if model.workflow_id:
        return model.but(saving=True, problems=[]), [Http("PATCH", "/api/workflows/" + model.workflow_id, body,
                                                          Saved, SaveFailed)]
    idem = key_for(model.idem, ("workflow", body))
    return model.but(saving=True, problems=[], idem=idem), [
        Http("POST", "/api/workflows", body, Saved, SaveFailed, key=idem[0])]


@on("workflow")
def Saved(model, workflow):
    m = model.but(saving=False, saved=True, workflow=workflow, problems=[], idem=None)
    if model.workflow_id is None:
        return m, [Navigate("/workflows/" + workflow["id"])]
    return m


@on("error")
def SaveFailed(model, error):
    problems = [(e.get("pointer") or "", e.get("message") or "is invalid")
                for e in error.details.get("errors") or ()] or [("", error.message)]
    return model.but(saving=False, problems=problems)


@on("name value")
def SetInput(model, name, value):
    return model.but(inputs=put(model.inputs, name, value), input_errors=put(model.input_errors, name, None))


@on()
def Start(model):
    spec = ((model.workflow or {}).get("definition") or {}).get("inputs") or {}
    values, errors = coerce_inputs(spec, model.inputs)
    if errors or model.busy:
        return model.but(input_errors=errors)
    body = {"input": values}
    idem = key_for(model.idem, ("run", model.workflow_id, body))
    return model.but(busy=True, error=None, idem=idem), [
        Http("POST", "/api/workflows/%s/runs" % model.workflow_id, body, Started, StartFailed, key=idem[0])]


@on("run")
def Started(model, run):
    # the page follows the new run from here (subscriptions), and the URL says which run it shows
    m = model.but(busy=False, run_id=run["id"], run=run, steps=[], waiting=None, cursor=None, idem=None,
                  selected=None,
                  runs=[run] + [r for r in model.runs if r["id"] != run["id"]])
    return m, [Navigate("/workflows/%s?run=%s" % (model.workflow_id, run["id"]), replace=True)]


@on("error")
def StartFailed(model, error):
    errors = {}
    for e in error.details.get("errors") or ():
        name = (e.get("pointer") or "").split("/")
        if len(name) >= 3 and name[1] == "input":
            errors[name[2]] = e.get("message")
    return model.but(busy=False, input_errors=errors, error=None if errors else error.message)


@on("body")
def GotRuns(model, body):
    return model.but(runs=[r for r in body.get("runs") or () if r.get("workflow_id") == model.workflow_id])


# ---------------------------------------------------------------- view

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
                           "value": model.source, "oninput": typed(SetSource),
                           "aria-invalid": "true" if problems else None,
                           "aria-describedby": "wf-problems" if problems else None}),
        ]),
        problems and h("div", {"class": "alert", "role": "alert", "id": "wf-problems"}, [
            h("p", {}, "The workflow was not saved:"),
            h("ul", {}, [h("li", {}, [h("code", {}, p) if p else None, " " + m if p else m]) for p, m in problems])]),
        model.saved and h("p", {"class": "muted", "role": "status"}, "Saved as version %d." % model.workflow.get("version", 1)),
        h("button", {"type": "submit", "disabled": model.saving}, "Saving…" if model.saving else "Save workflow"),
    ])


def _input(model, name, spec):
    fid, err, kind = "wf-input-" + name, model.input_errors.get(name), spec.get("type")
    on_change = lambda ev: SetInput(name, ev.target.value)  # noqa: E731
    if kind == "boolean":
        chosen = "true" if model.inputs.get(name) == "true" else "false"
        control = select({"id": fid}, (("false", "No"), ("true", "Yes")), chosen, on_change)
    else:
        control = h("input", dict(described(fid, err), type="text", value=model.inputs.get(name, ""), oninput=on_change,
                                  inputmode="decimal" if kind == "number" else None))
    label = name + ("" if spec.get("required", True) else " (optional)")
    return field(fid, label, control, err, spec.get("description"))


def _inputs_form(model):
    spec = ((model.workflow or {}).get("definition") or {}).get("inputs") or {}
    return h("form", {"class": "card", "onsubmit": Start(), "aria-labelledby": "wf-run-title"}, [
        h("h2", {"id": "wf-run-title"}, "Run it"),
        [_input(model, name, spec[name] or {}) for name in sorted(spec)] or note("This workflow takes no input."),
        h("button", {"type": "submit", "disabled": model.busy}, "Start run"),
    ])


def _runs_list(model):
    if not model.runs:
        return None
    return h("section", {"class": "card", "aria-labelledby": "wf-runs-title"}, [
        h("h2", {"id": "wf-runs-title"}, "Recent runs"),
        h("ul", {"class": "plain"}, [h("li", {"key": r["id"]}, [
            h("a", {"href": "/workflows/%s?run=%s" % (model.workflow_id, r["id"]),
                    "aria-current": "true" if r["id"] == model.run_id else None}, r["id"][:8]), " ",
            badge(r.get("status", "")), h("span", {"class": "muted"}, " " + fmt.when(r.get("created_at")))])
            for r in model.runs[:20]]),
    ])


def view(model):
    if model.workflow_id is None:
        return h("section", {"aria-labelledby": "wf-title"}, [
            h("h1", {"id": "wf-title"}, "Workflows"),
            alert(model.error),
            listing(model.workflows, "Loading workflows…", "No workflows yet. Start from the example below.",
                    lambda workflows: h("ul", {"class": "list", "aria-label": "Workflows"},
                                        [memo(_workflow_row, w, key=w["id"]) for w in workflows])),
            _editor(model, "New workflow"),
            model.source and workflow_diagram.view(model),
        ])
    w = model.workflow
    return h("section", {"aria-labelledby": "wf-title"}, [
        h("p", {}, h("a", {"href": "/workflows"}, "← All workflows")),
        h("h1", {"id": "wf-title"}, (w or {}).get("name") or "Loading…"),
        w and (w.get("definition") or {}).get("description") and note(w["definition"]["description"]),
        alert(model.error),
        w and _inputs_form(model),
        w and workflow_diagram.view(model),
        workflow_run.panel(model),
        _runs_list(model),
        w and _editor(model, "Definition · version %d" % w.get("version", 1)),
    ])

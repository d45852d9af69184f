"""The workflow drawn: the definition being edited laid out (workflow_graph.py) as SVG through
the page's own virtual nodes, each step coloured by its state in the run shown, the problems of
the last save pinned to their steps, and the details of the step chosen (input, output, attempts,
timing, error). Every step is a button: Tab reaches it, Enter or Space (or a click) shows its
details, with the step's attempts latest first. Reads the workflows page's model (source,
workflow, run, steps, problems, selected, view, drag); its messages are workflow_run's
(SelectStep) and workflow_view's (zoom, pan, ClickStep). Built apart from the first load
(build.py LAZY)."""

from runtime import h, memo
from ui import ACTIVE, badge, note
from workflow_definition import parse_source, pretty
from workflow_graph import layout, step_of
import workflow_run
import workflow_view as zoom
import fmt

STATE = {"running": "running", "retrying": "running", "waiting": "waiting", "succeeded": "succeeded",
         "failed": "failed", "cancelled": "stopped", "interrupted": "stopped"}
STATE_LABEL = {"pending": "pending", "running": "running", "waiting": "waiting for approval",
               "succeeded": "succeeded", "failed": "failed", "stopped": "stopped", "skipped": "skipped"}
_cache = [None, None]      # (source, Layout): the last layout, drawn again while the text is the same


def definition_of(model):
    """What to draw: the text being edited when it is a JSON object, else the saved definition."""
    value, why = parse_source(model.source) if model.source else (None, "empty")
    if why:
        value = (model.workflow or {}).get("definition") or {}
    return value


def layout_of(model):
    if _cache[0] != model.source or _cache[1] is None:
        _cache[0], _cache[1] = model.source, layout(definition_of(model))
    return _cache[1]


def states(run, steps, lay):
    """{node id: state} while a run is shown; {} otherwise."""
    if run is None:
        return {}
    seen = {s.get("step"): STATE.get(s.get("status"), "running") for s in steps}
    missing = "pending" if run.get("status") in ACTIVE else "skipped"
    out = {}
    for n in lay.nodes:
        if n.kind == "join":
            group = seen.get(n.group)
            out[n.id] = "succeeded" if group == "succeeded" else (group if group in ("failed", "stopped") else missing)
        elif n.kind != "missing":
            out[n.id] = seen.get(n.id, missing)
    return out


def problems_by_step(problems):
    out = {}
    for pointer, message in problems or ():
        name = step_of(pointer)
        if name is not None:
            out.setdefault(name, []).append(message)
    return out


def _shape(n):
    w, h2 = n.w, n.h
    if n.kind == "branch":       # a hexagon: the way splits here
        return h("polygon", {"class": "shape", "points": "0,%d 14,0 %d,0 %d,%d %d,%d 14,%d" % (
            h2 // 2, w - 14, w, h2 // 2, w - 14, h2, h2)})
    if n.kind == "approval":
        return h("rect", {"class": "shape", "width": w, "height": h2, "rx": h2 // 2})
    if n.kind == "join":
        return h("rect", {"class": "shape", "width": w, "height": h2, "rx": 4})
    return h("rect", {"class": "shape", "width": w, "height": h2, "rx": 6})


def _short(s, n=18):
    return s if len(s) <= n else s[:n - 1] + "…"


def _on_key(name, width, height):
    def handler(ev):
        if ev.key in ("Enter", " ", "Spacebar"):
            ev.preventDefault()
            return workflow_run.SelectStep(name)
        return zoom.on_key(ev, width, height)
    return handler


def _node(n, state, errors, selected, width, height):
    cls = "node k-" + n.kind + (" st-" + state if state else "") + (" invalid" if errors else "") \
        + (" selected" if selected else "")
    attrs = {"class": cls, "transform": "translate(%d %d)" % (n.x, n.y), "data-step": n.id,
             "data-state": state or None}
    label = [n.id, n.detail + " step" if n.kind not in ("join", "missing") else n.detail]
    if state:
        label.append(STATE_LABEL[state])
    if errors:
        label.append("; ".join(errors))
    title = h("title", {}, ", ".join(x for x in label if x))
    if n.kind == "join":
        return h("g", attrs, [title, _shape(n)])
    if n.kind != "missing":
        attrs.update({"tabindex": "0", "role": "button", "aria-label": ", ".join(x for x in label if x),
                      "aria-pressed": "true" if selected else "false",
                      "onclick": zoom.ClickStep(n.id), "onkeydown": _on_key(n.id, width, height)})
    return h("g", attrs, [
        title, _shape(n),
        h("text", {"class": "name", "x": n.w // 2, "y": 18, "text-anchor": "middle"}, _short(n.id)),
        h("text", {"class": "detail", "x": n.w // 2, "y": 34, "text-anchor": "middle"},
          ("⚠ " if errors else "") + _short(n.detail, 22)),
        n.start and h("circle", {"class": "start", "cx": 0, "cy": 0, "r": 5}),
    ])


def _edge(e, st):
    taken = st.get(e.src) in ("succeeded", "running", "waiting", "failed") and st.get(e.dst) not in (
        None, "pending", "skipped")
    cls = "edge" + (" taken" if taken else "") + (" back" if e.back else "")
    return h("path", {"class": cls, "d": e.path, "marker-end": "url(#wf-arrow)"})


def _labels(lay):
    """A branch's cases and an approval's ways, beside their edge halfway down its first gap."""
    nodes = {n.id: n for n in lay.nodes}
    out = []
    for e in lay.edges:
        if e.label and not e.back and e.src in nodes and e.dst in nodes:
            a, b = nodes[e.src], nodes[e.dst]
            x = (a.x + a.w // 2 + b.x + b.w // 2) // 2
            out.append(h("text", {"class": "edge-label", "x": x + 5, "y": a.y + a.h + 16}, e.label))
    return out


MAX_HEIGHT = 560   # the box's height in pixels at most (CSS caps it at 70vh too): a larger drawing is fitted


def _figure(lay, run, steps, problems, selected):
    """Everything inside the SVG; a memo of what it draws, so a drag or a zoom changes one attribute."""
    st, errs = states(run, steps, lay), problems_by_step(problems)
    return h("g", {"class": "figure"}, [
        h("defs", {}, h("marker", {"id": "wf-arrow", "viewBox": "0 0 8 8", "refX": "8", "refY": "4",
                                   "markerUnits": "userSpaceOnUse", "markerWidth": "8", "markerHeight": "8",
                                   "orient": "auto"},
                        h("path", {"d": "M0 0L8 4L0 8z", "class": "arrow"}))),
        h("g", {"class": "edges"}, [_edge(e, st) for e in lay.edges]),
        h("g", {"class": "labels"}, _labels(lay)),
        [_node(n, st.get(n.id), errs.get(n.id), n.id == selected, lay.width, lay.height) for n in lay.nodes],
    ])


def drawing(model):
    """The SVG of the definition with the run's states and the save's problems, fitted to its
    box, zoomed and panned by the page's view (workflow_view.py)."""
    lay = layout_of(model)
    if not lay.nodes:
        return note("Nothing to draw yet: the definition has no steps.")
    view = zoom.settle(model.view[0], model.view[1], model.view[2], lay.width, lay.height) if model.view else None
    attrs = {"class": "wf-graph" + (" dragging" if model.drag is not None else ""),
             "viewBox": zoom.view_box_attr(view, lay.width, lay.height), "width": "100%",
             "height": min(lay.height, MAX_HEIGHT), "preserveAspectRatio": "xMidYMid meet", "role": "group",
             "aria-label": "Workflow steps; choose one for its details"}
    attrs.update(zoom.handlers(lay.width, lay.height))
    return h("svg", attrs, memo(_figure, lay, model.run, model.steps, model.problems, model.selected))


def toolbar(model):
    """Zoom in, zoom out, fit, and how close the drawing is shown."""
    lay = layout_of(model)
    if not lay.nodes:
        return None
    w, ht = lay.width, lay.height
    shown = zoom.current(model.view, w, ht)[0]
    return h("div", {"class": "row wf-zoom", "role": "toolbar", "aria-label": "Zoom"}, [
        h("button", {"type": "button", "class": "secondary", "aria-label": "Zoom in", "title": "Zoom in (+)",
                     "disabled": shown >= zoom.MAX_ZOOM, "onclick": zoom.Zoom(zoom.STEP, w, ht)}, "+"),
        h("button", {"type": "button", "class": "secondary", "aria-label": "Zoom out", "title": "Zoom out (−)",
                     "disabled": model.view is None, "onclick": zoom.Zoom(1 / zoom.STEP, w, ht)}, "−"),
        h("button", {"type": "button", "class": "secondary", "title": "Fit the drawing (0)",
                     "disabled": model.view is None, "onclick": zoom.Fit()}, "Fit"),
        h("span", {"class": "muted", "data-zoom": "%d" % round(shown * 100)}, "%d%%" % round(shown * 100)),
    ])


def _configured(raw):
    """The step's own input as the definition has it (a template, arguments, a prompt)."""
    raw = raw if isinstance(raw, dict) else {}
    for k in ("input", "arguments", "prompt", "cases", "steps"):
        if k in raw:
            return raw[k]
    return None


def _block(label, value):
    if value is None or value == "":
        return None
    return [h("dt", {}, label), h("dd", {}, h("pre", {"class": "out"}, value if isinstance(value, str)
                                                    else pretty(value)))]


def _row(label, value):
    return [h("dt", {}, label), h("dd", {}, value)] if value not in (None, "") else None


def details(model):
    """The chosen step: its problems, state, attempts, timing, input and output."""
    name = model.selected
    if not name:
        return note("Choose a step (click it, or Tab to it and press Enter) to see its details.")
    raw = ((definition_of(model) or {}).get("steps") or {}).get(name)
    s = next((x for x in model.steps if x.get("step") == name), None) if model.run is not None else None
    errors = problems_by_step(model.problems).get(name) or []
    kind = (s or {}).get("kind") or (raw or {}).get("kind") or "?"
    took = workflow_run.took(s) if s else None
    tokens = (s or {}).get("prompt_tokens", 0) + (s or {}).get("completion_tokens", 0)
    return h("section", {"class": "wf-details", "aria-labelledby": "wf-step-title", "aria-live": "polite"}, [
        h("h3", {"id": "wf-step-title"}, [h("code", {}, name), " · " + kind + " step ",
                                           s and badge(s.get("status", ""))]),
        errors and h("ul", {"class": "alert", "role": "alert"}, [h("li", {}, m) for m in errors]),
        h("dl", {"class": "facts"}, [
            _row("Status", None if s else ("not run" if model.run is not None else "no run shown")),
            s and _row("Attempts", str((s.get("attempts") or [s])[-1].get("attempt") or 1)),
            s and _row("Started", fmt.when(s.get("started_at")) if s.get("started_at") else None),
            s and _row("Finished", fmt.when(s.get("finished_at")) if s.get("finished_at") else None),
            _row("Took", fmt.duration(took) if took is not None else None),
            _row("Tokens", fmt.count(tokens) if tokens else None),
            _block("Input", (s or {}).get("input")),
            (s or {}).get("input") is None and _block("Input (as defined)", _configured(raw)),
            s and _block("Output", s.get("output")),
            s and s.get("error") and _row("Error", h("span", {"class": "field-error"}, s["error"])),
        ]),
        s and attempt_list(s.get("attempts")),
        h("button", {"type": "button", "class": "secondary", "onclick": workflow_run.SelectStep(None)}, "Close"),
    ])


def _attempt(a):
    took = workflow_run.took(a)
    return h("li", {"data-attempt": str(a.get("attempt", "")), "data-status": a.get("status", "")}, [
        h("strong", {}, "Attempt %s" % a.get("attempt", "?")), " ", badge(a.get("status", "")),
        a.get("started_at") and " " + fmt.when(a["started_at"]),
        " · " + (fmt.duration(took) if took is not None else "…"),
        a.get("error") and h("div", {"class": "field-error"}, a["error"]),
    ])


def attempt_list(attempts):
    """Each attempt of the step, latest first: the one that decided the step's status is on top,
    where the eye lands, and the earlier failures read downwards from it."""
    if not attempts:
        return None
    return h("section", {"class": "wf-attempts", "aria-labelledby": "wf-attempts-title"}, [
        h("h4", {"id": "wf-attempts-title"}, "Attempts, latest first"),
        h("ul", {}, [_attempt(a) for a in reversed(attempts)]),
    ])


def problem_list(model):
    """The save's problems at steps, each a link to its step in the drawing."""
    errs = problems_by_step(model.problems)
    if not errs:
        return None
    return h("ul", {"class": "wf-problems", "aria-label": "Problems at steps"}, [
        h("li", {}, [h("button", {"type": "button", "class": "link", "onclick": workflow_run.SelectStep(name)},
                       name), ": " + "; ".join(errs[name])]) for name in sorted(errs)])


def view(model):
    """The drawing card: the SVG, the problems at steps, and the chosen step's details."""
    return h("section", {"class": "card wf-diagram", "aria-labelledby": "wf-diagram-title"}, [
        h("h2", {"id": "wf-diagram-title"}, "Diagram"),
        toolbar(model),
        h("div", {"class": "wf-canvas", "tabindex": "0", "role": "region",
                  "aria-label": "Drawing: + and − zoom, 0 fits, arrow keys pan, drag to pan, ctrl or ⌘ + wheel zooms",
                  "onkeydown": lambda ev: zoom.on_key(ev, layout_of(model).width, layout_of(model).height)},
          drawing(model)),
        problem_list(model),
        details(model),
    ])


"""View pieces the pages share: alerts and notes, labelled fields and their errors, check boxes,
selects, tables, and the status badge of a run or step. Pure functions returning virtual nodes."""

from runtime import h

ACTIVE = ("queued", "running", "waiting_for_input")        # a run still going
STATUSES = ACTIVE + ("succeeded", "failed", "cancelled", "interrupted")
EVENT_STATUS = {"run.queued": "queued", "run.started": "running", "run.waiting": "waiting_for_input",
                "run.succeeded": "succeeded", "run.failed": "failed", "run.cancelled": "cancelled",
                "run.interrupted": "interrupted"}         # the status a run.* event announces
LABELS = {"queued": "Queued", "running": "Running", "waiting_for_input": "Waiting for you", "succeeded": "Succeeded",
          "failed": "Failed", "cancelled": "Cancelled", "interrupted": "Interrupted", "retrying": "Retrying",
          "waiting": "Waiting"}
_BADGE = {"retrying": "waiting_for_input", "waiting": "waiting_for_input"}   # step statuses drawn as run ones


def badge(status):
    """A run's or a step's status as a coloured label."""
    return h("span", {"class": "status s-" + _BADGE.get(status, status)}, LABELS.get(status, status))


def alert(message):
    """An error, read out when it appears (nothing for None or '')."""
    return h("p", {"class": "alert", "role": "alert"}, message) if message else None


def note(message):
    """A quiet line: loading, empty lists."""
    return h("p", {"class": "muted"}, message)


def listing(items, loading, empty, show, error=None):
    """What a list fetched over REST shows: its error, a note while it loads (items None) or
    when it is empty, else show(items)."""
    if error:
        return alert(error)
    if items is None:
        return note(loading)
    return show(items) if items else note(empty)


_typed = {}


def typed(to_msg):
    """A field's input handler: to_msg(the field's value). One per to_msg, so a re-render leaves
    the listener alone."""
    fn = _typed.get(to_msg)
    if fn is None:
        fn = _typed[to_msg] = lambda ev: to_msg(ev.target.value)
    return fn


def described(fid, error):
    """A control's attributes that tie it to its error message (see field)."""
    return {"id": fid, "aria-invalid": "true" if error else None,
            "aria-describedby": (fid + "-error") if error else None}


def field(fid, label, control, error=None, hint=None):
    """A labelled control (its id fid, attributes from described) with its error below it."""
    return h("div", {"class": "field" + (" invalid" if error else "")}, [
        h("label", {"for": fid}, label),
        hint and h("p", {"class": "muted small"}, hint),
        control,
        error and h("p", {"class": "field-error", "id": fid + "-error"}, error),
    ])


def checks(legend, name, options, chosen, to_msg, titles=None, error=None):
    """A group of check boxes, one per option; to_msg(option) toggles one."""
    return h("fieldset", {"class": "field"}, [
        h("legend", {}, legend),
        h("div", {"class": "checks"}, [h("label", {"class": "check", "title": titles.get(o, "") if titles else None}, [
            h("input", {"type": "checkbox", "name": name, "value": o, "checked": o in chosen,
                        "onchange": to_msg(o)}), " " + o]) for o in options]),
        error and h("p", {"class": "field-error"}, error),
    ])


def select(attrs, options, current, on_change):
    """A select of (value, label) options with current selected; on_change is its handler."""
    return h("select", dict(attrs, onchange=on_change),
             [h("option", {"value": v, "selected": current == v}, label) for v, label in options])


def table(label, columns, rows, cls=None):
    """A table named for screen readers, its column headings and rows; it scrolls sideways alone."""
    return h("div", {"class": "table-wrap"}, h("table", {"aria-label": label, "class": cls}, [
        h("thead", {}, h("tr", {}, [h("th", {"scope": "col"}, c) for c in columns])),
        h("tbody", {}, rows),
    ]))

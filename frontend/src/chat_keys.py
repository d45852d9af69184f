"""The chat page's keyboard shortcuts (the keys: shortcuts.py): each one does what a button or
field of the page does, through the same messages (send is Enter in the composer)."""

from runtime import Update, Http, Navigate, Focus
from shortcuts import Shortcut, Escape
from ui import ACTIVE
import controls
import transcript
import turn_picker

on = Update()


def _last(model, role):
    for m in reversed(model.messages):
        if m.get("role") == role and m.get("content") and not m.get("pending"):
            return m
    return None


def _neighbour(model, step):
    ids = [t["id"] for t in model.threads or ()]
    if not ids:
        return None
    if model.thread_id not in ids:
        return ids[0]
    return ids[(ids.index(model.thread_id) + step) % len(ids)]


def _stop(model):
    for rid, status in model.runs.items():
        if status in ACTIVE or status == "waiting_for_input":
            return transcript.update(transcript.Cancel(rid), model)
    return model


def _edit(model):
    m = _last(model, "user")
    if m is None or not controls.can_regenerate(model):
        return model
    return controls.update(controls.StartEdit(m["id"], m["content"]), model)[0], [Focus("edit-text", False)]


def _new(model):
    if not model.agent_id:
        return model
    return model, [Http("POST", "/api/threads", {"agent_id": model.agent_id}, Created, NewFailed)]


def _go(model, step):
    tid = _neighbour(model, step)
    return (model, [Navigate("/chat/" + tid)]) if tid and tid != model.thread_id else model


@on("thread")
def Created(model, thread):
    return model, [Navigate("/chat/" + thread["id"])]


@on("error")
def NewFailed(model, error):
    return model.but(error=error.message)


ACTIONS = {
    "search": lambda m: (m, [Focus("thread-search", False)]),
    "compose": lambda m: (m, [Focus("composer", False)]) if m.thread_id else m,
    "stop": _stop,
    "regenerate": lambda m: controls.update(controls.Regenerate(), m) if m.thread_id else m,
    "edit": _edit,
    "copy": lambda m: transcript.update(transcript.CopyText(_last(m, "assistant")["content"]), m)
    if _last(m, "assistant") else m,
    "pick": lambda m: turn_picker.update(turn_picker.Pick(True), m) if m.thread_id else m,
    "new": _new,
    "next": lambda m: _go(m, 1),
    "prev": lambda m: _go(m, -1),
}


@on(Shortcut)
def _shortcut(model, action):
    fn = ACTIONS.get(action)
    return fn(model) if fn else model


@on(Escape)
def _escape(model):
    """Escape stops editing a message, then closes the agent picker."""
    if model.editing is not None:
        return model.but(editing=None, edit_text=""), [Focus("composer", False)]
    if model.picking:
        return model.but(picking=False)
    return model

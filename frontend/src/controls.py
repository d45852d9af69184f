"""Conversation controls of the chat page: regenerate the last answer, and edit a message you
sent and run again from it. Both truncate the thread (the server removes the later messages in
the transaction that queues the new run and says so with messages.removed; docs/chat.md says
why not branches): the page removes them at once and puts them back if the request fails.

Fields on the chat model: editing (id of the message being edited, or None), edit_text (what
is typed), undo (the messages before a regenerate / edit on its way), plus the transcript's."""

from runtime import Update, Http, h, put
from ui import ACTIVE
import turn_picker

on = Update()
update = on.update


def _last_user(messages):
    for m in reversed(messages):
        if m.get("role") == "user" and not m.get("pending"):
            return m
    return None


def _idle(model):
    return not model.streams and not any(s in ACTIVE or s == "interrupted" for s in model.runs.values())


def can_regenerate(model):
    last = _last_user(model.messages)
    return _idle(model) and model.undo is None and last is not None and last is not model.messages[-1]


@on()
def Regenerate(model):
    last = _last_user(model.messages)
    if not can_regenerate(model):
        return model
    kept = [m for m in model.messages if (m.get("seq") or 0) <= (last.get("seq") or 0)]
    return (model.but(undo=model.messages, messages=kept, error=None),
            [Http("POST", "/api/threads/%s/regenerate" % model.thread_id, turn_picker.body(model) or None, Accepted,
                  Refused)])


@on("message_id content")
def StartEdit(model, message_id, content):
    return model.but(editing=message_id, edit_text=content, error=None)


@on("value")
def SetEditText(model, value):
    return model.but(edit_text=value)


@on()
def CancelEdit(model):
    return model.but(editing=None, edit_text="")


@on()
def SaveEdit(model):
    old = next((m for m in model.messages if m["id"] == model.editing), None)
    text = (model.edit_text or "").strip()
    if old is None or not text or model.undo is not None:
        return model
    seq = old.get("seq") or 0
    # the new text takes the old one's place (a provisional seq just before it: messages.removed
    # from the old seq on, arriving after, leaves it)
    new = {"id": "edit-" + old["id"], "seq": seq - 0.5, "role": "user", "content": text, "pending": True}
    kept = [m for m in model.messages if (m.get("seq") or 0) < seq] + [new]
    return (model.but(undo=model.messages, messages=kept, editing=None, edit_text="", error=None),
            [Http("POST", "/api/threads/%s/messages/%s/edit" % (model.thread_id, old["id"]),
                  dict(turn_picker.body(model), content=text), Accepted, Refused)])


@on("run")
def Accepted(model, run):
    """The new run: followed like a sent message's (its events come on the thread's topic)."""
    input_id = run.get("input_message_id")
    messages = [dict(m, pending=False, id=input_id or m["id"]) if m.get("pending") else m for m in model.messages]
    m = model.but(undo=None, messages=messages, runs=put(model.runs, run["id"], model.runs.get(run["id"])
                                                          or run.get("status", "queued")),
                  run_inputs=put(model.run_inputs, run["id"], input_id))
    return turn_picker.after_turn(_superseded(m, run["id"], input_id), run)


@on("error")
def Refused(model, error):
    return model.but(messages=model.undo if model.undo is not None else model.messages, undo=None,
                     error=error.message)


def removed(model, run_id, data, kind):
    """messages.removed: the thread's messages from a seq on are gone (this tab's or another's
    regenerate / edit); runs that answered them go from view too."""
    start = data.get("from_seq")
    if not isinstance(start, int):
        return model
    removed = [m for m in model.messages if (m.get("seq") or 0) >= start and not m.get("pending")]
    if not removed:
        return _superseded(model, run_id, model.run_inputs.get(run_id))
    gone = {m["id"] for m in removed}
    wrote = {m.get("run_id") for m in removed}     # a regenerated answer's run: its input stays
    runs = {rid: s for rid, s in model.runs.items()
            if (model.run_inputs.get(rid) not in gone and rid not in wrote) or rid == run_id}
    return _superseded(model.but(messages=[m for m in model.messages if m["id"] not in gone], runs=runs), run_id,
                       model.run_inputs.get(run_id))


def _superseded(model, run_id, input_id):
    """A regenerate's new run answers the same message as the run it replaces: that one goes
    from view (its answer is removed; its time and tokens line would stay otherwise)."""
    if not input_id:
        return model
    old = [rid for rid, mid in model.run_inputs.items() if mid == input_id and rid != run_id and rid in model.runs]
    return model.but(runs={rid: s for rid, s in model.runs.items() if rid not in old}) if old else model


def _typed(ev):
    return SetEditText(ev.target.value)


def view(model):
    """The edit form (while editing) and the Regenerate button (when the last answer may be redone)."""
    if model.editing is not None:
        return h("form", {"class": "edit-message card", "onsubmit": SaveEdit(), "aria-label": "Edit your message"}, [
            h("label", {"for": "edit-text"}, "Edit your message (the answers after it are replaced)"),
            h("textarea", {"id": "edit-text", "rows": "3", "value": model.edit_text, "oninput": _typed}),
            h("div", {"class": "row"}, [
                h("button", {"type": "submit", "disabled": not (model.edit_text or "").strip()}, "Save and run"),
                h("button", {"type": "button", "class": "secondary", "onclick": CancelEdit()}, "Cancel")])])
    if can_regenerate(model):
        return h("div", {"class": "row thread-controls"}, h(
            "button", {"type": "button", "class": "secondary small", "aria-keyshortcuts": "r", "onclick": Regenerate()},
            "Regenerate answer"))
    return None


def edit_button(m):
    """On a message you sent (drawn inside the message's memo: it depends on the message only)."""
    return h("button", {"type": "button", "class": "secondary small", "aria-label": "Edit message",
                        "onclick": StartEdit(m["id"], m.get("content", ""))}, "Edit")

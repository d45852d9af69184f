"""Keyboard: the keys (shortcuts.py), the list opened with `?` (focus kept inside, given back),
the chat's actions by key (chat_keys.py) and who answers the next turn (turn_picker.py)."""

import app
import chat
import shortcuts
import turn_picker
import thread_list
from runtime import Http, Navigate, Focus, Copy, Live
from shortcuts import Shortcut, ShowShortcuts, Escape
from kit import find, find_all, text_of, fire, effects_of

T = "t1"
AGENTS = [{"id": "a1", "name": "Helper", "provider": "local", "model": "gpt-test"},
          {"id": "a2", "name": "Pirate", "provider": "local", "model": "gpt-other"}]


class El:
    def __init__(self, tag="BODY", editable=False, doc=None):
        self.tagName, self.isContentEditable, self.ownerDocument = tag, editable, doc
        self.focused = False

    def focus(self):
        self.focused = True


class Doc:
    def __init__(self, dialog=False):
        self.close = El("BUTTON")
        self.dialog = dialog

    def getElementById(self, eid):
        if not self.dialog:
            return None
        return {shortcuts.DIALOG: El("DIV"), shortcuts.CLOSE: self.close}.get(eid)


class Key:
    def __init__(self, key, tag="BODY", dialog=False, ctrl=False, editable=False):
        self.key, self.ctrlKey, self.metaKey, self.altKey, self.isComposing = key, ctrl, False, False, False
        self.doc = Doc(dialog)
        self.target = El(tag, editable, self.doc)
        self.prevented = False

    def preventDefault(self):
        self.prevented = True


def test_single_keys_outside_text_fields_are_shortcuts():
    e = Key("?")
    assert shortcuts.key(e) == ShowShortcuts(True) and e.prevented
    for k, action in (("r", "regenerate"), ("/", "search"), ("a", "pick"), ("s", "stop"), ("j", "next")):
        e = Key(k)
        assert shortcuts.key(e) == Shortcut(action) and e.prevented
    # typing is never taken over: not in fields, not with modifiers, not unknown keys
    for e in (Key("?", "TEXTAREA"), Key("r", "INPUT"), Key("r", "SELECT"), Key("r", editable=True),
              Key("r", ctrl=True), Key("x"), Key("Enter")):
        assert shortcuts.key(e) is None and not e.prevented
    assert shortcuts.key(Key("Escape", "TEXTAREA")) == Escape()


class SvgEl:
    """An SVG element (a step of the workflow drawing): no isContentEditable at all."""
    tagName = "g"

    def __init__(self, doc):
        self.ownerDocument = doc


def test_a_key_on_an_svg_element_is_a_shortcut_not_an_error():
    e = Key("?")
    e.target = SvgEl(e.doc)
    assert shortcuts.key(e) == ShowShortcuts(True) and e.prevented


def test_the_list_keeps_focus_and_closes_with_escape():
    e = Key("Tab", dialog=True)
    assert shortcuts.key(e) is None and e.prevented and e.doc.close.focused   # Tab stays on Close
    for k in ("Escape", "?"):
        e = Key(k, dialog=True)
        assert shortcuts.key(e) == ShowShortcuts(False) and e.prevented
    e = Key("r", dialog=True)
    assert shortcuts.key(e) is None                        # no page action behind the dialog


def test_the_app_opens_the_list_moves_focus_and_gives_it_back():
    model, _ = app.init("/agents")
    model, fx = app.update(ShowShortcuts(True), model)
    assert model.shortcuts and effects_of(fx, Focus) == [Focus(shortcuts.CLOSE, True)]
    tree = app.view(model)
    dialog = find(tree, "div", id=shortcuts.DIALOG)
    assert dialog.attrs["role"] == "dialog" and dialog.attrs["aria-modal"] == "true"
    keys = [text_of(k) for k in find_all(dialog, "kbd")]
    assert keys[:2] == ["?", "/"] and "r" in keys and "e" in keys
    assert fire(find(dialog, "button", id=shortcuts.CLOSE), "click") == ShowShortcuts(False)
    model, fx = app.update(ShowShortcuts(False), model)
    assert not model.shortcuts and effects_of(fx, Focus) == [Focus(None, False)]
    assert not find_all(app.view(model), "div", id=shortcuts.DIALOG)
    model2, fx = app.update(ShowShortcuts(False), model)        # closing twice changes nothing
    assert model2 is model and fx == []


def _thread(messages=(), runs=None, **thread):
    model, _ = chat.init(T)
    model, _ = chat.update(turn_picker.GotAgents(AGENTS), model)
    model, _ = chat.update(thread_list.GotThreads([{"id": T, "title": "One"}, {"id": "t2", "title": "Two"}]), model)
    model, _ = chat.update(chat.GotThread(dict({"id": T, "agent_id": "a1", "title": "One",
                                                "messages": list(messages)}, **thread)), model)
    return model


USER = {"id": "m1", "seq": 1, "role": "user", "content": "hi"}
REPLY = {"id": "m2", "seq": 2, "role": "assistant", "content": "hello **there**", "run_id": "r1",
         "agent_id": "a2", "model": "gpt-other"}


def test_chat_actions_by_key():
    model = _thread([USER, REPLY])
    _, fx = chat.update(Shortcut("search"), model)
    assert fx == [Focus("thread-search", False)]
    _, fx = chat.update(Shortcut("compose"), model)
    assert fx == [Focus("composer", False)]
    _, fx = chat.update(Shortcut("copy"), model)
    assert effects_of(fx, Copy) == [Copy("hello **there**")]
    m, fx = chat.update(Shortcut("regenerate"), model)
    assert [x.url for x in effects_of(fx, Http)] == ["/api/threads/t1/regenerate"] and m.undo is not None
    m, fx = chat.update(Shortcut("edit"), model)
    assert m.editing == "m1" and m.edit_text == "hi" and effects_of(fx, Focus) == [Focus("edit-text", False)]
    m, fx = chat.update(Escape(), m)
    assert m.editing is None and fx == [Focus("composer", False)]
    _, fx = chat.update(Shortcut("next"), model)
    assert fx == [Navigate("/chat/t2")]
    _, fx = chat.update(Shortcut("prev"), model)
    assert fx == [Navigate("/chat/t2")]                     # around the list
    m, fx = chat.update(Shortcut("new"), model)
    post = effects_of(fx, Http)[0]
    assert (post.method, post.url, post.body) == ("POST", "/api/threads", {"agent_id": "a1"})
    assert effects_of(chat.update(post.on_ok({"id": "t9"}), m)[1], Navigate) == [Navigate("/chat/t9")]
    # stop: the running run's cancel
    running = model.but(runs={"r5": "running"})
    _, fx = chat.update(Shortcut("stop"), running)
    assert [x.url for x in effects_of(fx, Http)] == ["/api/runs/r5/cancel"]
    _, fx = chat.update(Shortcut("stop"), model)             # nothing going: nothing sent
    assert fx == []


def test_who_answered_each_reply_is_shown():
    model = _thread([USER, REPLY])
    tree = chat.view(model)
    whos = [text_of(w) for w in find_all(tree, "span", **{"class": "who"})]
    assert "Pirate · gpt-other" in whos and "You" in whos


def test_another_agent_or_model_for_the_next_message_only_or_from_now_on():
    model = _thread([USER, REPLY])
    assert "Helper · gpt-test" in text_of(find(chat.view(model), "div", **{"class": "turn-pick row muted"}))
    model, fx = chat.update(Shortcut("pick"), model)
    assert model.picking and Focus(turn_picker.AGENT_FIELD, False) in fx
    assert [x.url for x in effects_of(fx, Http)] == ["/api/models"]
    model, _ = chat.update(turn_picker.GotModels({"providers": [{"provider": "local", "configured_models": [
        "gpt-test", "gpt-other"], "available_models": None}]}), model)
    tree = chat.view(model)
    agent_field = find(tree, "select", id=turn_picker.AGENT_FIELD)
    assert [o.attrs["value"] for o in find_all(agent_field, "option")] == ["a1", "a2"]
    model, _ = chat.update(fire(agent_field, "change", "a2"), model)
    assert turn_picker.body(model) == {"agent_id": "a2"}          # the Pirate with its own model
    model_field = find(chat.view(model), "select", id="turn-model")
    model, _ = chat.update(fire(model_field, "change", "gpt-test"), model)
    assert turn_picker.body(model) == {"agent_id": "a2", "model": "gpt-test"}
    # the next message carries the choice; once accepted, the choice is spent
    model, _ = chat.update(chat.SetComposer("again"), model)
    model, fx = chat.update(chat.SendMessage(), model)
    post = effects_of(fx, Http)[0]
    assert post.body == {"content": "again", "agent_id": "a2", "model": "gpt-test"}
    model, _ = chat.update(chat.Posted({"id": "r2", "status": "queued", "agent_id": "a2", "model": "gpt-test",
                                        "input_message_id": "m3"}), model)
    assert turn_picker.body(model) == {} and not model.picking
    assert model.run_meta["r2"] == ("a2", "gpt-test")
    # a choice for one message is said so
    model, _ = chat.update(turn_picker.ChooseModel("gpt-other"), model)
    assert "(this message only)" in text_of(chat.view(model))
    # from now on: the thread's choice, saved on the server (PATCH), not repeated by each turn
    model, fx = chat.update(turn_picker.Keep(True), model)
    patch = effects_of(fx, Http)
    assert [(x.method, x.url, x.body) for x in patch] == [("PATCH", "/api/threads/" + T,
                                                           {"agent_id": "a1", "model": "gpt-other"})]
    assert turn_picker.body(model) == {}
    model, _ = chat.update(patch[0].on_ok({"id": T, "agent_id": "a1", "model": "gpt-other", "title": "One"}), model)
    assert (model.agent_id, model.thread_model) == ("a1", "gpt-other")
    assert "Helper · gpt-other" in text_of(find(chat.view(model.but(picking=False)), "div",
                                                **{"class": "turn-pick row muted"}))
    model, _ = chat.update(chat.Posted({"id": "r3", "status": "queued", "agent_id": "a1", "model": "gpt-other"}),
                           model)
    assert turn_picker.body(model) == {}
    model = model.but(messages=[USER, REPLY], runs={})
    _, fx = chat.update(Shortcut("regenerate"), model)
    assert effects_of(fx, Http)[0].body is None
    # while "from now on" is ticked, each change is saved: another agent goes with its own model
    model, fx = chat.update(turn_picker.ChooseAgent("a2"), model)
    assert [x.body for x in effects_of(fx, Http)] == [{"agent_id": "a2", "model": None}]
    model, fx = chat.update(turn_picker.ChooseModel("gpt-other"), model)     # the thread's already
    assert effects_of(fx, Http) == []
    model, fx = chat.update(turn_picker.ChooseModel("gpt-test"), model)      # the agent's own: null
    assert [x.body for x in effects_of(fx, Http)] == [{"agent_id": "a1", "model": None}]
    # another tab or client changed it: thread.updated on the thread's topic or users/<me>
    model, _ = chat.update(Live({"topic": "users/u1", "op": "event", "seq": 9, "type": "thread.updated",
                                 "data": {"thread_id": T, "agent_id": "a2", "model": "gpt-test"}}),
                           model.but(user_id="u1"))
    assert (model.agent_id, model.thread_model) == ("a2", "gpt-test")
    model, _ = chat.update(Live({"topic": "threads/" + T, "op": "event", "seq": 10, "type": "thread.updated",
                                 "data": {"thread_id": T, "agent_id": "a1", "model": None}}), model)
    assert (model.agent_id, model.thread_model) == ("a1", None)
    model, _ = chat.update(Live({"topic": "users/u1", "op": "event", "seq": 11, "type": "thread.updated",
                                 "data": {"thread_id": "t2", "agent_id": "a2", "model": "gpt-test"}}), model)
    assert (model.agent_id, model.thread_model) == ("a1", None)             # another thread's
    # a reload shows the thread's choice (GET /api/threads/{id})
    again = chat.update(chat.GotThread({"id": T, "agent_id": "a2", "model": "gpt-test", "title": "One",
                                        "messages": []}), _thread())[0]
    assert "Pirate · gpt-test" in text_of(find(chat.view(again), "div", **{"class": "turn-pick row muted"}))
    model = model.but(choice_keep=False)
    # choosing the thread's own agent and model again is no choice
    model, _ = chat.update(turn_picker.ChooseModel("gpt-test"), model)
    assert turn_picker.body(model) == {}


def _kept(model):
    """Whether the open picker's "From now on" box is ticked."""
    return find(chat.view(model.but(picking=True)), "input", type="checkbox").attrs["checked"]


def _updated(model, seq, data, topic="threads/" + T):
    return chat.update(Live({"topic": topic, "op": "event", "seq": seq, "type": "thread.updated",
                             "data": dict({"thread_id": T}, **data)}), model)[0]


def test_the_from_now_on_box_shows_the_threads_own_choice():
    assert not _kept(_thread())                      # a thread as started: its agent, the agent's model
    # a reload of a thread with a model of its own (saved from now on): ticked, nothing for one message
    model = _thread(agent_id="a2", model="gpt-test")
    assert _kept(model) and turn_picker.body(model) == {}
    assert "Pirate · gpt-test" in text_of(find(chat.view(model), "div", **{"class": "turn-pick row muted"}))
    # a choice saved from now on in another tab or client, on the thread's topic or users/<me>
    assert _kept(_updated(_thread(), 5, {"agent_id": "a2", "model": None}))
    assert _kept(_updated(_thread().but(user_id="u1"), 5, {"agent_id": "a1", "model": "gpt-other"}, "users/u1"))
    other = _updated(_thread().but(user_id="u1"), 5, {"thread_id": "t2", "agent_id": "a2", "model": "x"}, "users/u1")
    assert not _kept(other)                          # another thread's
    # a choice for the next message only, pending: left as it is, and still spent by the next turn
    model, _ = chat.update(turn_picker.ChooseModel("gpt-other"), _thread())
    model = _updated(model, 5, {"agent_id": "a1", "model": "gpt-test"})
    assert not _kept(model) and turn_picker.body(model) == {"model": "gpt-other"}
    # never unticked from the server: a choice of the agent's own model leaves the box ticked
    model = _updated(_thread(agent_id="a2", model="gpt-test"), 5, {"agent_id": "a2", "model": None})
    assert _kept(model) and model.thread_model is None
    model, _ = chat.update(chat.GotThread({"id": T, "agent_id": "a2", "model": None, "title": "One",
                                          "messages": []}), model)
    assert _kept(model)

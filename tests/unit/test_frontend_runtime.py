"""The SPA's pure parts under CPython: virtual nodes, the keyed diff (checked by
applying it to a small fake DOM), memo, and the pages' update functions."""

from __future__ import annotations

import pathlib
import sys

import pytest

from .test_frontend_pages import load_spa

_spa = load_spa()      # the SPA's modules under unique names (spa.app, spa.chat, ...)
agents, app, chat, runtime, signin = _spa.agents, _spa.app, _spa.chat, _spa.runtime, _spa.signin
ApiError, Applier, Http, Navigate, Send = runtime.ApiError, runtime.Applier, runtime.Http, runtime.Navigate, runtime.Send
diff, h, memo, text = runtime.diff, runtime.h, runtime.memo, runtime.text


# ---------------------------------------------------------------- a fake DOM with the browser's method names

class Node:
    def __init__(self, tag=None, value=None):
        self.tag, self.nodeValue, self.attrs, self.childNodes, self.parentNode = tag, value, {}, [], None
        self.value = ""

    def appendChild(self, node):
        return self.insertBefore(node, None)

    def insertBefore(self, node, before):
        if node.parentNode is not None:
            node.parentNode.childNodes.remove(node)
        self.childNodes.insert(self.childNodes.index(before) if before is not None else len(self.childNodes), node)
        node.parentNode = self
        return node

    def removeChild(self, node):
        self.childNodes.remove(node)
        node.parentNode = None

    def replaceChild(self, new, old):
        self.insertBefore(new, old)
        self.removeChild(old)

    def setAttribute(self, name, value):
        self.attrs[name] = value

    def removeAttribute(self, name):
        self.attrs.pop(name, None)

    def addEventListener(self, etype, fn):
        pass

    def html(self):
        if self.tag is None:
            return self.nodeValue
        attrs = "".join(f' {k}="{v}"' for k, v in sorted(self.attrs.items()))
        return f"<{self.tag}{attrs}>" + "".join(c.html() for c in self.childNodes) + f"</{self.tag}>"


class Doc:
    def __init__(self):
        self.created = 0

    def createElement(self, tag):
        self.created += 1
        return Node(tag)

    def createTextNode(self, s):
        self.created += 1
        return Node(None, s)


def mount(vnode):
    doc = Doc()
    root = Node("body")
    applier = Applier(doc, root, lambda handler, event: None)
    root.appendChild(applier.build(vnode))
    return doc, root, applier


def render(vnode) -> str:
    return mount(vnode)[1].html()


def patch(old, new):
    """Mount old, apply diff(old, new); the result must equal rendering new from scratch."""
    doc, root, applier = mount(old)
    ops = diff(old, new)
    applier.apply(ops)
    assert root.html() == render(new)
    return root, ops, doc


def ul(keys):
    return h("ul", {}, [h("li", {"key": k}, k) for k in keys])


# ---------------------------------------------------------------- vnodes and diff

def test_h_flattens_children_and_drops_none():
    node = h("p", {"class": "x", "key": "k"}, ["a", None, False, [text("b"), 3]])
    assert node.key == "k" and "key" not in node.attrs
    assert [c.text for c in node.children] == ["a", "b", "3"]


def test_attribute_and_text_changes_are_minimal():
    root, ops, _ = patch(h("p", {"class": "a", "title": "t"}, "hi"), h("p", {"class": "b"}, "ho"))
    kinds = sorted(op[0] for op in ops)
    assert kinds == ["attr", "attr", "text"]


def test_different_tag_replaces():
    _, ops, _ = patch(h("div", {}, [h("p", {}, "x")]), h("div", {}, [h("section", {}, "x")]))
    assert [op[0] for op in ops] == ["replace"]


@pytest.mark.parametrize("before,after", [
    ("abcde", "edcba"), ("abcde", "bcdea"), ("abcde", "eabcd"), ("abcde", "acbde"),
    ("abc", "abcxyz"), ("abcxyz", "xbz"), ("", "abc"), ("abc", ""), ("abcdef", "fbdxace"),
])
def test_keyed_reorder_matches_fresh_render(before, after):
    patch(ul(before), ul(after))


def test_keyed_reorder_moves_nodes_instead_of_recreating_them():
    old = ul("abcde")
    doc, root, applier = mount(old)
    elements = {c.key: c.el for c in old.children}
    new = ul("eabcd")
    ops = diff(old, new)
    applier.apply(ops)
    assert [op[0] for op in ops] == ["move"]           # one move: e to the front
    assert {c.key: c.el for c in new.children} == elements
    assert doc.created == 11                            # nothing built after the first render


def test_memo_skips_unchanged_subtrees():
    calls = []

    def row(item):
        calls.append(item["id"])
        return h("li", {}, item["name"])

    items = [{"id": "1", "name": "one"}, {"id": "2", "name": "two"}]
    old = h("ul", {}, [memo(row, i, key=i["id"]) for i in items])
    doc, root, applier = mount(old)
    assert calls == ["1", "2"]
    changed = [items[0], {"id": "2", "name": "TWO"}]
    new = h("ul", {}, [memo(row, i, key=i["id"]) for i in changed])
    applier.apply(diff(old, new))
    assert calls == ["1", "2", "2"]                    # only the changed row was rendered again
    assert root.html() == "<body><ul><li>one</li><li>TWO</li></ul></body>"


def test_input_value_is_a_property_and_always_checked():
    old = h("input", {"value": "abc"})
    doc, root, applier = mount(old)
    el = old.el
    el.value = "abcd"                                  # the person typed
    new = h("input", {"value": ""})
    applier.apply(diff(old, new))
    assert el.value == "" and "value" not in el.attrs


def test_handlers_live_in_a_table_not_the_dom():
    old = h("button", {"onclick": agents.Submit()}, "Go")
    doc, root, applier = mount(old)
    assert list(applier.handlers.values()) == [{"click": agents.Submit()}]
    assert diff(old, h("button", {"onclick": agents.Submit()}, "Go")) == []   # equal messages: no op


def test_backoff_doubles_and_is_capped():
    assert [runtime.backoff_ms(i) for i in range(7)] == [500, 1000, 2000, 4000, 8000, 15000, 15000]


# ---------------------------------------------------------------- routing and the app

def test_routes():
    assert app.route("/") == ("redirect", "/agents")
    assert app.route("/agents") == ("agents", None)
    assert app.route("/chat/t_1") == ("chat", "t_1")
    assert app.route("/chat") == ("chat", None)
    assert app.route("/signin?error=link_invalid&next=%2Fchat%2Fx") == (
        "signin", {"error": "link_invalid", "next": "/chat/x"})
    assert app.route("/nope/x")[0] == "notfound"


def test_unauthorized_goes_to_signin_with_next():
    model, _ = app.init("/chat/t1")
    _, effects = app.update(app.Unauthorized(), model)
    assert effects == [Navigate("/signin?next=/chat/t1", replace=True)]


def test_socket_only_when_signed_in_and_banner_when_dropped():
    model, _ = app.init("/agents")
    assert app.subscriptions(model) == []
    model, _ = app.update(app.GotMe({"user": {"id": "u", "email": "a@b"}}), model)
    assert [s.url for s in app.subscriptions(model)] == ["/ws"]
    model, _ = app.update(app.WsOpened(), model)
    model, _ = app.update(app.WsClosed(1006), model)
    assert "Offline" in repr(app.view(model))


# ---------------------------------------------------------------- pages

def test_signin_explains_error_codes():
    model, effects = signin.init({"error": "signup_closed"})
    assert effects[0].url == "/auth/providers"
    model, _ = signin.update(signin.GotProviders([{"name": "google", "display_name": "Google",
                                                   "login_url": "/auth/login/google"}]), model)
    page = repr(signin.view(model))
    assert "no account for you" in page and "/auth/login/google" in page
    assert "unknown_thing" in signin.error_text("unknown_thing")


def test_agents_validation_error_lands_at_the_field():
    model, _ = agents.init()
    model, effects = agents.update(agents.Submit(), model)
    assert effects == [Http("POST", "/api/agents", {"name": "", "tools": []}, agents.Created, agents.CreateFailed)]
    err = ApiError(422, "validation_failed", "/name: must be 1 to 100 characters",
                   {"errors": [{"pointer": "/name", "message": "must be 1 to 100 characters"}]})
    model, _ = agents.update(agents.CreateFailed(err), model)
    assert model.errors == {"name": "must be 1 to 100 characters"} and model.form_error is None
    assert not model.saving
    model, _ = agents.update(agents.SetField("name", "Helper"), model)
    assert model.errors == {}
    model, _ = agents.update(agents.Created({"id": "a1", "name": "Helper", "model": "m", "version": 1}), model)
    assert [a["id"] for a in model.agents] == ["a1"] and model.form["name"] == ""


def test_agents_unknown_pointer_is_a_form_error():
    err = ApiError(422, "validation_failed", "x", {"errors": [{"pointer": "/provider", "message": "is unknown"}]})
    assert agents.field_errors(err) == ({}, "/provider: is unknown")


def _opened_chat(online):
    """chat.init, then the answer to its Recall of the kept replay cursor (none kept)."""
    model, effects = chat.init("t1", online)
    recall = [e for e in effects if isinstance(e, runtime.Recall)][0]
    model, more = chat.update(recall.to_msg(None), model)
    return model, effects + more


def _event(seq, kind, **data):
    return chat.Live({"op": "event", "topic": "threads/t1", "seq": seq, "type": kind,
                      "data": {"run_id": "r1", "thread_id": "t1", **data}})


def test_chat_streams_deltas_then_the_stored_message():
    model, effects = _opened_chat(online=True)
    assert Send({"op": "subscribe", "topic": "threads/t1", "after": 0}) in effects   # replay: a reload mid-stream loses nothing
    model, _ = chat.update(chat.Live({"op": "subscribed", "topic": "threads/t1", "seq": 10}), model)
    model, _ = chat.update(_event(11, "run.started", resumed=False), model)
    model, _ = chat.update(_event(12, "message.delta", text="Hel"), model)
    model, _ = chat.update(_event(13, "message.delta", text="lo"), model)
    model, _ = chat.update(_event(13, "message.delta", text="lo"), model)     # a replayed duplicate
    assert model.streams == {"r1": "Hello"} and model.last_seq == 13
    message = {"id": "m2", "seq": 2, "role": "assistant", "content": "Hello", "partial": False}
    model, _ = chat.update(_event(14, "message.created", message=message), model)
    assert model.streams == {} and [m["id"] for m in model.messages] == ["m2"]
    model, _ = chat.update(_event(15, "run.succeeded", prompt_tokens=1, completion_tokens=2), model)
    assert model.runs == {"r1": "succeeded"}


def test_chat_resubscribes_after_the_last_seq_on_reconnect():
    model, _ = _opened_chat(online=True)
    model, _ = chat.update(chat.Live({"op": "subscribed", "topic": "threads/t1", "seq": 41}), model)
    model, _ = chat.update(_event(42, "message.delta", text="x"), model)
    model, _ = chat.update(chat.Disconnected(), model)
    assert not model.online
    model, effects = chat.update(chat.Connected(), model)
    assert effects == [Send({"op": "subscribe", "topic": "threads/t1", "after": 42})]


def test_chat_cursor_expired_reloads_over_rest():
    model, _ = _opened_chat(online=True)
    model, _ = chat.update(chat.Live({"op": "subscribed", "topic": "threads/t1", "seq": 5}), model)
    model, effects = chat.update(chat.Live({"op": "error", "code": "cursor_expired", "message": "old"}), model)
    assert model.last_seq is None
    assert effects[0].url == "/api/threads/t1?limit=1000"
    assert Send({"op": "subscribe", "topic": "threads/t1"}) in effects


def test_chat_send_is_optimistic_and_rolls_back_on_failure():
    model, _ = _opened_chat(online=True)
    model, _ = chat.update(chat.SetComposer("  hi  "), model)
    model, effects = chat.update(chat.SendMessage(), model)
    assert effects == [Http("POST", "/api/threads/t1/messages", {"content": "hi"}, chat.Posted, chat.PostFailed)]
    assert model.composer == "" and model.messages[-1]["pending"]
    model, _ = chat.update(chat.SendMessage(), model)                 # empty composer: nothing
    failed, _ = chat.update(chat.PostFailed(ApiError(500, "internal", "boom")), model)
    assert failed.messages == [] and failed.composer == "hi" and failed.error == "boom"
    ok, _ = chat.update(chat.Posted({"id": "r9", "status": "queued"}), model)
    assert ok.runs == {"r9": "queued"} and not ok.sending


def test_chat_reload_merges_stored_and_live_messages():
    model, _ = _opened_chat(online=False)
    live = {"id": "m3", "seq": 3, "role": "assistant", "content": "late", "partial": False}
    model, _ = chat.update(_event(20, "message.created", message=live), model)
    stored = [{"id": "m1", "seq": 1, "role": "user", "content": "q", "partial": False},
              {"id": "m2", "seq": 2, "role": "assistant", "content": "a", "partial": False}]
    model, _ = chat.update(chat.GotThread({"id": "t1", "title": "", "messages": stored}), model)
    assert [m["id"] for m in model.messages] == ["m1", "m2", "m3"] and model.title == "Untitled chat"

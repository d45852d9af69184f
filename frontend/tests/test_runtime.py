"""The runtime: virtual nodes, the keyed diff checked by applying it to a fake DOM, memo, SVG;
messages, the update table, and the topics a socket follows."""

import runtime
from runtime import (h, text, memo, diff, ApiError, backoff_ms, Every, Http, reply_message, failed_messages,
                     json_or_none, key_for, new_key)
from kit import raises
import chat
import thread_list
import fakedom


def render(v):
    return fakedom.mount(v)


def same_dom(v):
    _, root = fakedom.mount(v)
    return root.html()


def check_patch(old, new):
    applier, root = fakedom.mount(old)
    applier.apply(diff(old, new))
    # a fresh tree of the same virtual node must look the same
    fresh = rebuild(new)
    assert root.html() == fresh, (root.html(), fresh)
    return applier, root


def rebuild(v):
    def clone(n):
        n = runtime.rendered(n)
        if n.tag is None:
            return text(n.text)
        a = dict(n.attrs)
        if n.key is not None:
            a["key"] = n.key
        return h(n.tag, a, [clone(c) for c in n.children])
    return same_dom(clone(v))


def ul(keys):
    return h("ul", {}, [h("li", {"key": k, "class": "c" + str(k)}, str(k)) for k in keys])


def test_h_flattens_and_drops_none():
    v = h("p", {"id": "x"}, ["a", None, False, ["b", [h("b", {}, "c")]], 3])
    assert [c.text if c.tag is None else c.tag for c in v.children] == ["a", "b", "b", "3"]
    assert v.attrs == {"id": "x"}


def test_keyed_reorders_keep_elements():
    perms = [[1, 2, 3, 4, 5], [5, 4, 3, 2, 1], [2, 3, 4, 5, 1], [1, 3, 5], [6, 1, 7, 3, 8], [], [9, 8, 1, 2]]
    for a in perms:
        for b in perms:
            old, new = ul(a), ul(b)
            applier, root = check_patch(old, new)


def test_keyed_move_reuses_element():
    old = ul([1, 2, 3])
    applier, root = fakedom.mount(old)
    first = root.childNodes[0].childNodes[0]
    new = ul([3, 1, 2])
    applier.apply(diff(old, new))
    assert root.childNodes[0].childNodes[1] is first
    ops = diff(ul([1, 2, 3]), ul([3, 1, 2]))
    assert len([o for o in ops if o[0] == "move"]) == 1


def test_attrs_added_changed_removed():
    check_patch(h("a", {"href": "/x", "title": "t"}, "x"), h("a", {"href": "/y", "rel": "r"}, "x"))
    old = h("button", {"disabled": True}, "b")
    applier, root = fakedom.mount(old)
    assert root.childNodes[0].attrs["disabled"] == ""
    applier.apply(diff(old, h("button", {"disabled": False}, "b")))
    assert "disabled" not in root.childNodes[0].attrs


def test_replace_on_tag_change_and_text_change():
    check_patch(h("div", {}, [h("p", {}, "a"), "t"]), h("div", {}, [h("span", {}, "a"), "u"]))
    check_patch(h("div", {}, "a"), h("div", {}, [h("i", {}, "x"), "y", h("b", {}, "z")]))


def test_value_is_a_property():
    v = h("input", {"value": "hi"})
    _, root = fakedom.mount(v)
    assert root.childNodes[0].value == "hi" and "value" not in root.childNodes[0].attrs


def test_memo_reuses_rendering_with_same_args():
    calls = []

    def row(item):
        calls.append(item["id"])
        return h("li", {}, item["name"])
    a, b = {"id": 1, "name": "a"}, {"id": 2, "name": "b"}
    old = h("ul", {}, [memo(row, a, key=1), memo(row, b, key=2)])
    applier, root = fakedom.mount(old)
    assert calls == [1, 2]
    b2 = dict(b, name="B")
    new = h("ul", {}, [memo(row, a, key=1), memo(row, b2, key=2)])
    applier.apply(diff(old, new))
    assert calls == [1, 2, 2]
    assert root.text() == "aB"


def test_svg_children_get_the_svg_namespace():
    old = h("div", {}, [])
    applier, root = fakedom.mount(old)
    new = h("div", {}, [h("svg", {"viewBox": "0 0 1 1"}, [h("rect", {"width": 1}), h("text", {}, "t")])])
    applier.apply(diff(old, new))
    svg = root.childNodes[0].childNodes[0]
    assert svg.namespaceURI == fakedom.SVG_NS and svg.childNodes[0].namespaceURI == fakedom.SVG_NS
    newer = h("div", {}, [h("svg", {"viewBox": "0 0 1 1"}, [h("circle", {"r": 1}), h("text", {}, "t")])])
    applier.apply(diff(new, newer))
    assert svg.childNodes[0].tag == "circle" and svg.childNodes[0].namespaceURI == fakedom.SVG_NS
    assert root.childNodes[0].namespaceURI != fakedom.SVG_NS


def test_events_are_tracked_and_forgotten():
    old = h("div", {}, [h("button", {"key": "b", "onclick": "x"}, "b")])
    applier, root = fakedom.mount(old)
    assert len(applier.handlers) == 1
    applier.apply(diff(old, h("div", {}, [])))
    assert applier.handlers == {}


def test_handlers_of_a_removed_subtree_are_forgotten_without_reading_its_elements():
    old = h("ul", {}, [h("li", {"key": i, "onclick": ("pick", i)}, [h("button", {"onclick": ("del", i)}, "x")])
                       for i in range(3)])
    applier, _ = fakedom.mount(old)
    assert len(applier.handlers) == 6
    for li in old.children[1:]:
        li.el = li.children[0].el = None    # the ids live on the virtual nodes: no element is read
        applier.forget(li)
    assert sorted(applier.handlers) == sorted([old.children[0].eid, old.children[0].children[0].eid])


def test_big_list_patch_is_small():
    items = list(range(200))
    old = ul(items)
    new = ul(items + [200])
    ops = diff(old, new)
    assert [o[0] for o in ops] == ["create"], ops


def test_api_error_fields_and_backoff():
    e = ApiError(422, "validation_failed", "bad", {"errors": [{"pointer": "/name", "message": "too short"}]})
    assert e.field_errors() == {"/name": "too short"}
    assert backoff_ms(0) == 500 and backoff_ms(1) == 1000 and backoff_ms(30) == 15000
    assert Every(1000, None).key == "every:1000"


def test_a_reply_on_ok_cannot_read_becomes_an_error_message():
    model, fx = chat.init("t1")
    threads = fx[0]
    assert reply_message(threads, 200, {"threads": []}) == thread_list.GotThreads([])
    bad = reply_message(threads, 200, "<html>proxy error</html>")
    assert isinstance(bad, thread_list.ListFailed) and bad.error.code == "bad_response"
    assert reply_message(Http("GET", "/x", None, lambda d: d["nope"]), 200, {}) is None


def test_a_failed_answer_leads_to_sign_in_on_401_and_to_the_request_own_error():
    def unauthorized():
        return "unauthorized"
    err = ApiError.of(401, json_or_none('{"error": {"code": "unauthorized", "message": "sign in"}}'))
    assert (err.code, err.message) == ("unauthorized", "sign in")
    mine = Http("GET", "/api/me", None, None, lambda e: ("failed", e.code))
    assert failed_messages(mine, err, unauthorized) == ["unauthorized", ("failed", "unauthorized")]
    # the sign-in page asks /auth/providers signed out: a 401 there is its own error only
    providers = Http("GET", "/auth/providers", None, None, lambda e: ("failed", e.code))
    assert failed_messages(providers, err, unauthorized) == [("failed", "unauthorized")]
    down = ApiError.of(502, json_or_none("<html>bad gateway</html>"))
    assert (down.code, down.body) == ("http_502", None)
    assert failed_messages(Http("GET", "/x", None, None, None), down, unauthorized) == []


def test_idempotency_keys_are_new_per_action_and_kept_for_a_resend():
    keys = {new_key() for _ in range(50)}
    assert len(keys) == 50 and all(8 <= len(k) <= 255 and " " not in k for k in keys)
    first = key_for(None, {"name": "A"})
    assert key_for(first, {"name": "A"}) == first                  # the same body again: the same key
    assert key_for(first, {"name": "B"})[0] != first[0]            # another body: a new action


# ---- messages, the update table, the topics a socket follows

def test_a_message_class_has_named_fields_and_equals_by_them():
    GotRun = runtime.message("GotRun", "run error")
    a = GotRun({"id": 1})
    assert a.run == {"id": 1} and a.error is None                  # fields not given are None
    assert a == GotRun({"id": 1}) and a != GotRun({"id": 2}) and a != runtime.message("GotRun", "run")({"id": 1})
    assert GotRun(error="x") == GotRun(None, "x") and repr(GotRun(1, 2)) == "GotRun(1, 2)"
    assert raises(TypeError, GotRun, 1, 2, 3) and raises(TypeError, lambda: GotRun(nope=1))
    assert isinstance(a, runtime.Msg) and GotRun.__name__ == "GotRun"


def test_update_is_a_table_of_handlers_declaring_their_messages():
    on = runtime.Update()

    @on("n")
    def Add(model, n):
        return model + n

    @on()
    def Twice(model):
        return model * 2, ["an effect"]

    @on(runtime.Live)
    def live(model, data):
        return model - data["seq"]

    assert Add.fields == ("n",) and Add(3).n == 3 and callable(live)
    assert on.update(Add(3), 1) == (4, [])                          # a model alone: no effects
    assert on.update(Twice(), 4) == (8, ["an effect"])
    assert on.update(runtime.Live({"seq": 2}), 5) == (3, [])
    assert on.update(runtime.Connected(True), 5) == (5, [])         # not in the table: nothing changes
    # a table that includes another one's handlers, and hands what neither knows on
    page = runtime.Update(on, otherwise=lambda msg, model: (model, ["otherwise"]))

    @page()
    def Reset(model):
        return 0
    assert page.update(Add(1), 1) == (2, []) and page.update(Reset(), 9) == (0, [])
    assert page.update(runtime.Disconnected(), 9) == (9, ["otherwise"])
    assert on.update(Reset(), 9) == (9, [])                         # the part does not know the page's


def test_topics_subscribe_what_is_wanted_from_its_cursor_and_let_go_of_the_rest():
    topics = runtime.Topics()
    assert topics.sync({"threads/t1": 5, "users/u1": None}) == [
        {"op": "subscribe", "topic": "threads/t1", "after": 5, "id": 1},
        {"op": "subscribe", "topic": "users/u1", "id": 2}]           # None: live events only
    assert topics.sync({"threads/t1": 9, "users/u1": None}) == []   # a moving cursor is not sent
    assert topics.sync({"users/u1": None, "runs/r1": 3}) == [
        {"op": "unsubscribe", "topic": "threads/t1", "id": 3},
        {"op": "subscribe", "topic": "runs/r1", "after": 3, "id": 4}]
    # the socket closed and opened again: every topic is asked for again, from its cursor now
    topics.reset()
    assert topics.sync({"users/u1": None, "runs/r1": 7}) == [
        {"op": "subscribe", "topic": "users/u1", "id": 1}, {"op": "subscribe", "topic": "runs/r1", "after": 7, "id": 2}]


def test_topics_name_the_topic_of_a_reply_and_do_not_ask_again_what_was_refused():
    topics = runtime.Topics()
    topics.sync({"system": None, "threads/t1": 5})
    refused = topics.receive({"op": "error", "code": "forbidden", "message": "no", "id": 1})
    assert refused == {"op": "error", "code": "forbidden", "message": "no", "id": 1, "topic": "system"}
    expired = topics.receive({"op": "error", "code": "cursor_expired", "message": "old", "id": 2, "floor": 40})
    assert expired["topic"] == "threads/t1"
    assert topics.sync({"system": None, "threads/t1": 5}) == []     # not again from the same cursor (no loop)
    assert topics.sync({"system": None, "threads/t1": None}) == [   # a new cursor: asked again
        {"op": "subscribe", "topic": "threads/t1", "id": 3}]
    assert topics.receive({"op": "subscribed", "topic": "threads/t1", "seq": 41, "id": 3})["topic"] == "threads/t1"
    assert topics.sync({"threads/t1": 41}) == []                    # system was refused: nothing to let go of
    # already_subscribed means followed; a reply to an unsubscribe changes nothing
    topics = runtime.Topics()
    topics.sync({"users/u1": None})
    topics.receive({"op": "error", "code": "already_subscribed", "message": "", "id": 1})
    assert topics.sync({"users/u1": None}) == []
    assert topics.sync({}) == [{"op": "unsubscribe", "topic": "users/u1", "id": 2}]
    assert topics.receive({"op": "error", "code": "not_subscribed", "message": "", "id": 2})["topic"] == "users/u1"
    assert topics.sync({}) == []
    # after a reconnect a refused topic is asked for once more (rights may have changed)
    topics = runtime.Topics()
    topics.sync({"system": None})
    topics.receive({"op": "error", "code": "forbidden", "message": "", "id": 1})
    topics.reset()
    assert topics.sync({"system": None}) == [{"op": "subscribe", "topic": "system", "id": 1}]

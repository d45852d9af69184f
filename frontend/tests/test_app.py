"""The app: routes, navigation (admin only for admins), live events handed to the page."""

import app
import chat
import runs
import account
from runtime import Http, Navigate, Socket, Every, Recall, Topics
from kit import find, find_all, text_of, effects_of

ME = {"user": {"id": "u1", "email": "ada@example.org", "name": "Ada", "role": "member"}}
ADMIN = {"user": {"id": "u2", "email": "root@example.org", "name": "Root", "role": "admin"}}


def test_routes():
    assert app.route("/") == ("redirect", "/agents")
    assert app.route("/chat/t1") == ("chat", "t1")
    assert app.route("/runs?status=failed") == ("runs", {"status": "failed"})
    assert app.route("/account") == ("account", None)
    assert app.route("/admin") == ("admin", None)
    assert app.route("/nope/x")[0] == "notfound"
    assert app.parse_query("next=%2Fchat%2Fx&a=b+c") == {"next": "/chat/x", "a": "b c"}


def signed_in(url, me=ME):
    model, fx = app.init(url)
    model, _ = app.update(app.GotMe(me), model)
    return model, fx


def test_nav_shows_admin_only_to_admins():
    model, _ = signed_in("/agents")
    links = [text_of(a) for a in find_all(app.view(model), "a") if a.attrs.get("href") in
             ("/agents", "/chat", "/runs", "/account", "/admin")]
    assert "Runs" in links and "Account" in links and "Admin" not in links
    model, _ = signed_in("/agents", ADMIN)
    assert find(app.view(model), "a", "Admin", href="/admin")
    assert find(app.view(model), "a", "Agents", aria_current="page")


def test_every_page_renders_signed_in():
    for url in ("/agents", "/chat", "/chat/t1", "/runs", "/runs?status=failed", "/account", "/admin", "/signin",
                "/workflows", "/workflows/w1?run=r1",
                "/missing"):
        model, fx = signed_in(url, ADMIN)
        tree = app.view(model)
        assert find(tree, "main")
        assert text_of(tree)


def topics(model):
    """The topics the app's socket follows: {topic: cursor}."""
    [socket] = [s for s in app.subscriptions(model) if isinstance(s, Socket)]
    return socket.topics


def test_socket_only_when_signed_in_and_clock_only_for_active_runs():
    model, _ = app.init("/runs")
    assert app.subscriptions(model) == []
    model, _ = app.update(app.GotMe(ME), model)
    subs = app.subscriptions(model)
    assert len(subs) == 1 and isinstance(subs[0], Socket)
    model, _ = app.update(runs.GotRuns({"runs": [{"id": "r1", "thread_id": "t1", "status": "running",
                                                   "created_at": "x"}]}), model)
    assert any(isinstance(s, Every) for s in app.subscriptions(model))
    assert topics(model) == {"users/u1": None, "threads/t1": None}


def test_live_events_reach_the_current_page():
    model, fx = signed_in("/chat/t1")
    recall = [e for e in fx if isinstance(e, Recall)][0]
    model, _ = app.update(recall.to_msg(None), model)
    model, fx = app.update(app.WsOpened(), model)
    assert model.online and topics(model) == {"threads/t1": 0, "users/u1": None}     # the whole log replayed
    ev = {"op": "event", "topic": "threads/t1", "seq": 5, "type": "message.delta", "at": "",
          "data": {"run_id": "r1", "thread_id": "t1", "text": "Hi"}}
    model, _ = app.update(app.WsMessage(ev), model)
    assert model.sub.streams == {"r1": "Hi"} and topics(model)["threads/t1"] == 5
    # leaving the page lets go of the thread (runtime.Topics unsubscribes what is no longer wanted)
    socket = Topics()
    socket.sync(topics(model))
    model, fx = app.update(app.UrlChanged("/runs"), model)
    assert socket.sync(topics(model)) == [{"op": "unsubscribe", "topic": "threads/t1", "id": 3},
                                          {"op": "unsubscribe", "topic": "users/u1", "id": 4}]   # until runs load
    # pages without live messages ignore the socket
    model, fx = app.update(app.UrlChanged("/agents"), model)
    assert app.update(app.WsMessage(ev), model) == (model, [])
    assert topics(model) == {}


def test_the_page_hears_whether_the_socket_was_open_before():
    model, _ = signed_in("/chat")
    model, fx = app.update(app.WsOpened(), model)
    assert fx == []                                         # the first time: the list init asked for is fresh
    model, _ = app.update(app.WsClosed(1006), model)
    model, fx = app.update(app.WsOpened(), model)
    assert [e.url for e in fx] == ["/api/threads?limit=100"]   # again: what changed meanwhile comes with it
    # a page opened while the socket is open knows it is live
    model, _ = app.update(app.UrlChanged("/runs"), model)
    assert model.sub.online


def test_session_end_forgets_the_user():
    model, _ = signed_in("/account")
    model, fx = app.update(account.SessionEnded(), model)
    assert model.me is None and app.subscriptions(model) == []
    assert effects_of(fx, Navigate)[0].path == "/signin"
    model, _ = signed_in("/chat/t1")
    model, fx = app.update(app.WsClosed(4001), model)
    assert model.me is None and effects_of(fx, Navigate)[0].path == "/signin?error=session_ended"


def test_offline_banner():
    model, _ = signed_in("/agents")
    model, _ = app.update(app.WsOpened(), model)
    assert not find_all(app.view(model), "div", "Offline")
    model, _ = app.update(app.WsClosed(1006), model)
    assert find(app.view(model), "div", "Offline", role="status")


def test_unauthorized_goes_to_signin_with_next():
    model, _ = app.init("/runs?status=failed")
    model, fx = app.update(app.Unauthorized(), model)
    assert effects_of(fx, Navigate)[0].path == "/signin?next=/runs"


def test_the_chat_page_follows_the_users_topic_and_keeps_it_between_threads():
    model, fx = signed_in("/chat/t1")
    model, _ = app.update([e for e in fx if isinstance(e, Recall)][0].to_msg("12"), model)
    model, fx = app.update(app.WsOpened(), model)
    assert model.sub.user_id == "u1" and topics(model) == {"threads/t1": 12, "users/u1": None}
    socket = Topics()
    assert [m["topic"] for m in socket.sync(topics(model))] == ["threads/t1", "users/u1"]
    # another thread: the old one is let go, users/<me> stays followed (no gap in between)
    model, fx = app.update(app.UrlChanged("/chat/t2"), model)
    model, _ = app.update([e for e in fx if isinstance(e, Recall)][0].to_msg(None), model)
    assert socket.sync(topics(model)) == [{"op": "unsubscribe", "topic": "threads/t1", "id": 3},
                                          {"op": "subscribe", "topic": "threads/t2", "after": 0, "id": 4}]


def test_the_runs_page_learns_who_is_signed_in():
    model, _ = app.init("/runs")
    model, _ = app.update(app.GotMe(ME), model)
    assert model.sub.user_id == "u1"
    # arriving on the page when the user is already known
    model, _ = app.update(app.UrlChanged("/account"), model)
    model, _ = app.update(app.UrlChanged("/runs"), model)
    assert model.sub.user_id == "u1"
    model, fx = app.update(app.WsOpened(), model)
    assert model.sub.user_id == "u1"

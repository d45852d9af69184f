"""The app: routes, navigation (admin only for admins), live events handed to the page."""

import app
import chat
import runs
import account
from runtime import Http, Navigate, Send, Socket, Every, Recall
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


def test_socket_only_when_signed_in_and_clock_only_for_active_runs():
    model, _ = app.init("/runs")
    assert app.subscriptions(model) == []
    model, _ = app.update(app.GotMe(ME), model)
    subs = app.subscriptions(model)
    assert len(subs) == 1 and isinstance(subs[0], Socket)
    model, _ = app.update(runs.GotRuns({"runs": [{"id": "r1", "thread_id": "t1", "status": "running",
                                                   "created_at": "x"}]}), model)
    assert any(isinstance(s, Every) for s in app.subscriptions(model))


def test_live_events_reach_the_current_page():
    model, fx = signed_in("/chat/t1")
    recall = [e for e in fx if isinstance(e, Recall)][0]
    model, _ = app.update(recall.to_msg(None), model)
    model, fx = app.update(app.WsOpened(), model)
    assert model.online and effects_of(fx, Send)[0].message == {"op": "subscribe", "topic": "threads/t1", "after": 0}
    ev = {"op": "event", "topic": "threads/t1", "seq": 5, "type": "message.delta", "at": "",
          "data": {"run_id": "r1", "thread_id": "t1", "text": "Hi"}}
    model, _ = app.update(app.WsMessage(ev), model)
    assert model.sub.streams == {"r1": "Hi"}
    # leaving the page unsubscribes (it was subscribed)
    model, _ = app.update(app.WsMessage({"op": "subscribed", "topic": "threads/t1", "seq": 5}), model)
    model, fx = app.update(app.UrlChanged("/runs"), model)
    assert {"op": "unsubscribe", "topic": "threads/t1"} in [e.message for e in effects_of(fx, Send)]
    # pages without live messages ignore the socket
    model, fx = app.update(app.UrlChanged("/account"), model)
    model, fx = app.update(app.WsMessage(ev), model)
    assert fx == []


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


def test_the_chat_page_follows_the_users_topic_and_moves_it_between_threads():
    model, _ = signed_in("/chat/t1")
    model, fx = app.update(app.WsOpened(), model)
    sub = {"op": "subscribe", "topic": "users/u1", "id": "chat-users"}
    assert model.sub.user_id == "u1" and sub in [e.message for e in effects_of(fx, Send)]
    # another thread: the old page lets go of users/<me>, the new one asks again, in that order
    model, fx = app.update(app.UrlChanged("/chat/t2"), model)
    sent = [e.message for e in effects_of(fx, Send)]
    assert sent.index({"op": "unsubscribe", "topic": "users/u1", "id": "chat-users"}) < sent.index(sub)


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

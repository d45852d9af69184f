"""The account page: API tokens shown once and revoked; log out here or everywhere."""

import account
from runtime import Http, ApiError, KnowUser, Connected, Disconnected, Live
from kit import find, find_all, text_of, fire, effects_of

TOK = {"id": "k1", "name": "ci", "scopes": ["read"], "created_at": "2026-01-01T00:00:00Z",
       "expires_at": "2026-01-31T00:00:00Z", "last_used_at": None}


def loaded(tokens=()):
    model, fx = account.init()
    assert fx[0].url == "/api/tokens"
    model, _ = account.update(account.GotTokens({"tokens": list(tokens)}), model)
    return model


def test_create_with_scopes_and_expiry_shows_the_value_once():
    model = loaded()
    tree = account.view(model)
    assert "No API tokens." in text_of(tree)
    model, _ = account.update(fire(find(tree, "input", id="token-name"), "input", "deploy"), model)
    model, _ = account.update(account.ToggleScope("write"), model)
    model, _ = account.update(fire(find(account.view(model), "select", id="token-expiry"), "change", "90"), model)
    model, fx = account.update(fire(find(account.view(model), "form", aria_labelledby="new-token"), "submit"), model)
    assert fx[0].method == "POST" and fx[0].body == {"name": "deploy", "scopes": ["read", "write"], "expires_in_days": 90}
    created = dict(TOK, id="k2", name="deploy", scopes=["read", "write"], token="ast_secret")
    model, _ = account.update(fx[0].on_ok(created), model)
    tree = account.view(model)
    assert find(tree, "input", id="new-token-value").attrs["value"] == "ast_secret"
    assert "ast_secret" not in str([t for t in model.tokens])
    model, _ = account.update(account.DismissNew(), model)
    assert not find_all(account.view(model), "input", id="new-token-value")
    assert "ast_secret" not in text_of(account.view(model))


def test_validation():
    model = loaded()
    model, fx = account.update(account.Create(), model)
    assert fx == [] and find(account.view(model), "p", id="token-name-error")
    model, _ = account.update(account.SetName("x"), model)
    model, _ = account.update(account.ToggleScope("read"), model)
    model, fx = account.update(account.Create(), model)
    assert fx == [] and "at least one scope" in text_of(account.view(model))
    model, _ = account.update(account.ToggleScope("admin"), model)
    model, fx = account.update(account.Create(), model)
    err = ApiError(403, "forbidden", "Only administrators can create admin tokens.")
    model, _ = account.update(fx[0].on_err(err), model)
    assert find(account.view(model), "p", "Only administrators", role="alert") and not model.saving


def test_revoke_asks_first():
    model = loaded([TOK])
    tree = account.view(model)
    model, fx = account.update(fire(find(tree, "button", aria_label="Revoke token ci"), "click"), model)
    assert fx == []
    model, fx = account.update(fire(find(account.view(model), "button", "Yes, revoke"), "click"), model)
    assert fx[0].method == "DELETE" and fx[0].url == "/api/tokens/k1"
    model, _ = account.update(fx[0].on_ok(None), model)
    assert model.tokens == [] and "No API tokens." in text_of(account.view(model))


def test_log_out_everywhere():
    model = loaded()
    model, fx = account.update(fire(find(account.view(model), "button", "Log out everywhere"), "click"), model)
    assert fx[0].url == "/auth/logout-all"
    assert isinstance(fx[0].on_ok({"sessions_revoked": 2}), account.SessionEnded)
    model, fx = account.update(account.LogOutHere(), model)
    assert fx[0].url == "/auth/logout"


def test_tokens_made_or_revoked_elsewhere_show_at_once():
    model = loaded([TOK, dict(TOK, id="k2", name="deploy")])
    assert account.subscriptions(model) == {}                  # nobody to follow yet
    model, fx = account.update(KnowUser("u1"), model)
    assert fx == [] and account.subscriptions(model) == {"users/u1": None}      # live only
    model, fx = account.update(Connected(False), model)
    assert fx == []                                   # first connection: the list is fresh
    ev = {"op": "event", "topic": "users/u1", "seq": 4, "type": "token.revoked", "at": "x", "data": {"token_id": "k1"}}
    model, _ = account.update(Live(ev), model)
    assert [t["id"] for t in model.tokens] == ["k2"]
    created = dict(ev, seq=5, type="token.created", data={"token_id": "k3", "name": "new", "scopes": ["read"]})
    model, fx = account.update(Live(created), model)
    assert fx[0].url == "/api/tokens"
    # another topic, malformed data: ignored
    assert account.update(Live(dict(ev, topic="users/u2")), model) == (model, [])
    assert account.update(Live(dict(ev, data="x")), model) == (model, [])
    # a drop and a reconnect: the topic stays wanted, and what changed meanwhile is loaded again
    model, fx = account.update(Disconnected(), model)
    assert fx == [] and account.subscriptions(model) == {"users/u1": None}
    model, fx = account.update(Connected(True), model)
    assert [e.url for e in effects_of(fx, Http)] == ["/api/tokens"]


def test_a_token_revoked_elsewhere_hides_the_value_shown_once():
    model = loaded([TOK])
    model, fx = account.update(account.Create(), account.update(account.SetName("deploy"), model)[0])
    model, _ = account.update(fx[0].on_ok(dict(TOK, id="k2", name="deploy", token="ast_secret")), model)
    model, _ = account.update(KnowUser("u1"), model)
    ev = {"op": "event", "topic": "users/u1", "seq": 4, "type": "token.revoked", "at": "x", "data": {"token_id": "k2"}}
    model, _ = account.update(Live(ev), model)
    assert model.new_token is None and [t["id"] for t in model.tokens] == ["k1"]
    assert not find_all(account.view(model), "input", id="new-token-value")

"""The sign-in and agents pages."""

import signin
import agents
from runtime import ApiError, Navigate
from kit import find, find_all, text_of, fire


def test_signin_one_button_per_provider_and_errors():
    model, fx = signin.init({"error": "state_mismatch", "next": "/chat/x"})
    assert fx[0].url == "/auth/providers"
    model, _ = signin.update(fx[0].on_ok({"providers": [{"name": "corp", "display_name": "Corp SSO"}]}), model)
    tree = signin.view(model)
    assert find(tree, "a", "Sign in with Corp SSO").attrs["href"] == "/auth/login/corp?next=/chat/x"
    assert find(tree, "p", role="alert")
    assert signin.error_text("weird") == "Sign-in failed (weird). Please try again."
    assert signin.login_href({"name": "p"}, "//evil") == "/auth/login/p"
    model, _ = signin.update(signin.GotProviders([]), model)
    assert "login-link" in text_of(signin.view(model))


def test_agents_create_with_field_errors_then_chat():
    model, fx = agents.init()
    model, _ = agents.update(agents.GotAgents([]), model)
    assert "No agents yet" in text_of(agents.view(model))
    model, fx = agents.update(fire(find(agents.view(model), "form"), "submit"), model)
    err = ApiError(422, "validation_failed", "bad", {"errors": [{"pointer": "/name", "message": "at least 1 characters"}]})
    model, _ = agents.update(fx[0].on_err(err), model)
    name = find(agents.view(model), "input", id="agent-name")
    assert name.attrs["aria-invalid"] == "true" and find(agents.view(model), "p", id="agent-name-error")
    model, _ = agents.update(fire(name, "input", "Helper"), model)
    assert not find_all(agents.view(model), "p", id="agent-name-error")
    model, fx = agents.update(agents.Submit(), model)
    agent = {"id": "a1", "name": "Helper", "model": "gpt", "version": 1}
    model, _ = agents.update(fx[0].on_ok(agent), model)
    model, fx = agents.update(fire(find(agents.view(model), "button", "Chat"), "click"), model)
    assert fx[0].body == {"agent_id": "a1"}
    model, fx = agents.update(fx[0].on_ok({"id": "t1"}), model)
    assert fx == [Navigate("/chat/t1")]

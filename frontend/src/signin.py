"""The sign-in page: one link per identity provider, and why the last try failed."""

from runtime import Update, Http, h
from ui import alert
import fmt

ERRORS = {
    "state_mismatch": "The sign-in took too long or was started in another tab. Please try again.",
    "id_token_invalid": "The identity provider's answer could not be verified. Please try again.",
    "email_not_verified": "Your identity provider has not verified your email address yet.",
    "signup_closed": "There is no account for you here. Ask an administrator to create one.",
    "identity_conflict": ("This email address belongs to an account that signs in with another account "
                          "at this provider. Ask an administrator."),
    "account_disabled": "Your account is disabled. Ask an administrator to enable it.",
    "token_exchange_failed": "The identity provider refused to finish the sign-in. Please try again.",
    "provider_unavailable": "The identity provider could not be reached. Please try again in a moment.",
    "provider_refused": "The identity provider did not let you sign in.",
    "issuer_mismatch": "The answer came from an unexpected identity provider.",
    "link_invalid": "That sign-in link is invalid, used or expired. Ask for a new one.",
    "session_ended": "Your session ended. Please sign in again.",
}


class Model:
    def __init__(self, error=None, providers=None, load_error=None, next_path=None):
        self.error, self.providers, self.load_error, self.next_path = error, providers, load_error, next_path


def error_text(code):
    """Plain words for a ?error= code (unknown codes still say something useful)."""
    if not code:
        return None
    return ERRORS.get(code, "Sign-in failed (%s). Please try again." % code)


def init(query=None):
    query = query or {}
    model = Model(error=query.get("error"), next_path=query.get("next"))
    return model, [Http("GET", "/auth/providers", None, lambda d: GotProviders(d.get("providers") or []),
                        ProvidersFailed)]


on = Update()
update = on.update


@on("providers")
def GotProviders(model, providers):
    return Model(model.error, providers, None, model.next_path)


@on("error")
def ProvidersFailed(model, error):
    return Model(model.error, [], error.message, model.next_path)


def login_href(provider, next_path=None):
    href = "/auth/login/" + provider["name"]
    if next_path and next_path.startswith("/") and not next_path.startswith("//"):
        href += "?next=" + fmt.quote(next_path).replace("%2F", "/")
    return href


def view(model):
    err = error_text(model.error)
    if model.providers is None:
        body = h("p", {"class": "muted"}, "Loading sign-in options…")
    elif model.providers:
        body = h("ul", {"class": "providers"}, [
            h("li", {"key": p["name"]}, h("a", {"class": "button", "href": login_href(p, model.next_path)},
                                          "Sign in with " + (p.get("display_name") or p["name"])))
            for p in model.providers])
    else:
        body = h("p", {}, "No identity provider is configured here. An administrator can give you a "
                          "single-use sign-in link (agentstead admin login-link).")
    return h("section", {"class": "card narrow", "aria-labelledby": "signin-title"}, [
        h("h1", {"id": "signin-title"}, "Sign in to Agentstead"),
        alert(err),
        alert(model.load_error),
        body,
    ])

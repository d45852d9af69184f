"""The account page: API tokens (create with scopes and expiry, value shown once, revoke)
and sessions (log out here, log out everywhere). Follows `users/{id}`: a token created
or revoked in another tab or by a script shows here at once."""

from runtime import Update, Http, KnowUser, Connected, Live, SessionEnded, h, memo, Record, key_for
from ui import alert, listing, field, described, checks, select, table, typed
import fmt

SCOPES = ("read", "write", "admin")
EXPIRY = (("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year"))


class Model(Record):
    def __init__(self):
        self.tokens = None            # None while loading
        self.name = ""
        self.scopes = ("read",)
        self.days = "30"
        self.saving = False
        self.form_error = None
        self.name_error = None
        self.new_token = None         # the created token, value included; shown once
        self.confirm = None           # id of the token whose revoke awaits confirmation
        self.error = None
        self.user_id = None           # users/{id} is followed once known
        self.idem = None              # (Idempotency-Key, body) of the last create: a resend reuses it


def init(_=None):
    return Model(), [_load()]


def _load():
    return Http("GET", "/api/tokens", None, GotTokens, LoadFailed)


def _topic(model):
    return "users/" + model.user_id if isinstance(model.user_id, str) and model.user_id else None


def subscriptions(model):
    """users/<me>, live only: a reconnect loads the list again instead."""
    return {_topic(model): None} if _topic(model) else {}


def _without(model, token_id):
    new = model.new_token if model.new_token and model.new_token.get("id") != token_id else None
    return model.but(tokens=[t for t in model.tokens or () if t["id"] != token_id], new_token=new)


on = Update()
update = on.update


@on("body")
def GotTokens(model, body):
    return model.but(tokens=body.get("tokens") or [])


@on("error")
def LoadFailed(model, error):
    return model.but(tokens=[], error=error.message)


@on("value")
def SetName(model, value):
    return model.but(name=value, name_error=None)


@on("scope")
def ToggleScope(model, scope):
    return model.but(scopes=tuple(s for s in SCOPES if (s in model.scopes) != (s == scope)), form_error=None)


@on("days")
def SetExpiry(model, days):
    return model.but(days=days)


@on()
def Create(model):
    name = model.name.strip()
    if model.saving:
        return model
    if not name:
        return model.but(name_error="Give the token a name, e.g. the script that uses it.")
    if not model.scopes:
        return model.but(form_error="Choose at least one scope.")
    body = {"name": name, "scopes": list(model.scopes), "expires_in_days": int(model.days)}
    idem = key_for(model.idem, body)
    return model.but(saving=True, form_error=None, idem=idem), [
        Http("POST", "/api/tokens", body, Created, CreateFailed, key=idem[0])]


@on("token")
def Created(model, token):
    listed = dict(token)
    listed.pop("token", None)
    return model.but(saving=False, name="", new_token=token, idem=None, tokens=[listed] + list(model.tokens or []))


@on("error")
def CreateFailed(model, error):
    errors = error.field_errors()
    return model.but(saving=False, name_error=errors.get("/name"),
                     form_error=None if list(errors) == ["/name"] else error.message)


@on()
def DismissNew(model):
    return model.but(new_token=None)


@on("token_id")
def AskRevoke(model, token_id):
    return model.but(confirm=token_id)


@on("token_id")
def Revoke(model, token_id):
    return model.but(confirm=None), [Http("DELETE", "/api/tokens/" + token_id, None, lambda _: Revoked(token_id),
                                          Failed)]


@on("token_id")
def Revoked(model, token_id):
    return _without(model, token_id)


@on()
def LogOutEverywhere(model):
    return model, [Http("POST", "/auth/logout-all", None, lambda _: SessionEnded(), Failed)]


@on()
def LogOutHere(model):
    return model, [Http("POST", "/auth/logout", None, lambda _: SessionEnded(), Failed)]


@on("error")
def Failed(model, error):
    return model.but(error=error.message)


@on(KnowUser)
def _know_user(model, user_id):
    return model.but(user_id=user_id)


@on(Connected)
def _connected(model, again):
    # back after a drop: what changed meanwhile comes with the list
    return model, [_load()] if again and model.tokens is not None else []


@on(Live)
def _live(model, data):
    if data.get("op") != "event" or data.get("topic") != _topic(model) or not isinstance(data.get("data"), dict):
        return model
    kind, token_id = data.get("type"), data["data"].get("token_id")
    if kind == "token.created":
        return model, [_load()]           # the list shows fields the event does not carry
    if kind == "token.revoked" and isinstance(token_id, str):
        return _without(model, token_id)
    return model


# ---------------------------------------------------------------- view

def _token_row(t, confirming):
    if confirming:
        actions = [h("span", {}, "Revoke it? "),
                   h("button", {"type": "button", "class": "danger", "onclick": Revoke(t["id"]),
                                "aria-label": "Confirm: revoke token " + t["name"]}, "Yes, revoke"),
                   h("button", {"type": "button", "class": "secondary", "onclick": AskRevoke(None)}, "Keep")]
    else:
        actions = [h("button", {"type": "button", "class": "secondary", "onclick": AskRevoke(t["id"]),
                                "aria-label": "Revoke token " + t["name"]}, "Revoke")]
    return h("tr", {}, [
        h("td", {}, t["name"]),
        h("td", {}, ", ".join(t.get("scopes") or ())),
        h("td", {}, fmt.when(t.get("created_at"))),
        h("td", {}, fmt.when(t.get("expires_at")) or "never"),
        h("td", {}, fmt.when(t.get("last_used_at")) or "never"),
        h("td", {"class": "actions"}, actions),
    ])


def _new_token(t):
    return h("div", {"class": "card notice", "role": "status", "aria-labelledby": "new-token-title"}, [
        h("h3", {"id": "new-token-title"}, "Token “%s” created" % t["name"]),
        h("p", {}, "Copy it now: it is shown only once. Send it as Authorization: Bearer <token>."),
        h("label", {"for": "new-token-value"}, "Token value"),
        h("input", {"id": "new-token-value", "type": "text", "readonly": True, "value": t["token"],
                    "class": "mono", "onfocus": _select_all}),
        h("button", {"type": "button", "class": "secondary", "onclick": DismissNew()}, "I have copied it"),
    ])


def _select_all(ev):
    ev.target.select()


def view(model):
    tokens = listing(model.tokens, "Loading tokens…", "No API tokens.", lambda tokens: table(
        "API tokens", ("Name", "Scopes", "Created", "Expires", "Last used", ""),
        [memo(_token_row, t, model.confirm == t["id"], key=t["id"]) for t in tokens]))
    name = h("input", dict(described("token-name", model.name_error), type="text", autocomplete="off",
                           value=model.name, oninput=typed(SetName)))
    form = h("form", {"class": "card", "novalidate": True, "onsubmit": Create(), "aria-labelledby": "new-token"}, [
        h("h3", {"id": "new-token"}, "New token"),
        field("token-name", "Name", name, model.name_error),
        checks("Scopes", "scope", SCOPES, model.scopes, ToggleScope),
        h("div", {"class": "field"}, [
            h("label", {"for": "token-expiry"}, "Expires after"),
            select({"id": "token-expiry"}, EXPIRY, model.days, typed(SetExpiry))]),
        alert(model.form_error),
        h("button", {"type": "submit", "disabled": model.saving}, "Creating…" if model.saving else "Create token"),
    ])
    return h("section", {"aria-labelledby": "account-title"}, [
        h("h1", {"id": "account-title"}, "Account"),
        alert(model.error),
        h("h2", {}, "API tokens"),
        model.new_token and _new_token(model.new_token),
        tokens,
        form,
        h("h2", {}, "Sessions"),
        h("div", {"class": "card"}, [
            h("p", {}, "Signed in on another device you no longer use? End every session, this one included."),
            h("div", {"class": "row"}, [
                h("button", {"type": "button", "class": "secondary", "onclick": LogOutHere()}, "Log out"),
                h("button", {"type": "button", "class": "danger", "onclick": LogOutEverywhere()},
                  "Log out everywhere"),
            ]),
        ]),
    ])

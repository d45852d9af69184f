"""The account page: API tokens (create with scopes and expiry, value shown once, revoke)
and sessions (log out here, log out everywhere). Follows `users/{id}`: a token created
or revoked in another tab or by a script shows here at once."""

from runtime import Msg, Http, Send, SessionEnded, h, memo, Record, key_for
import fmt

SCOPES = ("read", "write", "admin")
EXPIRY = (("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year"))


class Msg(Msg):
    pass


class GotTokens(Msg):
    def __init__(self, body):
        self.body = body


class LoadFailed(Msg):
    def __init__(self, error):
        self.error = error


class SetName(Msg):
    def __init__(self, value):
        self.value = value


class ToggleScope(Msg):
    def __init__(self, scope):
        self.scope = scope


class SetExpiry(Msg):
    def __init__(self, days):
        self.days = days


class Create(Msg):
    pass


class Created(Msg):
    def __init__(self, token):
        self.token = token


class CreateFailed(Msg):
    def __init__(self, error):
        self.error = error


class DismissNew(Msg):
    pass


class AskRevoke(Msg):
    def __init__(self, token_id):
        self.token_id = token_id


class Revoke(Msg):
    def __init__(self, token_id):
        self.token_id = token_id


class Revoked(Msg):
    def __init__(self, token_id):
        self.token_id = token_id


class RevokeFailed(Msg):
    def __init__(self, error):
        self.error = error


class LogOutEverywhere(Msg):
    pass


class LogOutHere(Msg):
    pass


class LogOutFailed(Msg):
    def __init__(self, error):
        self.error = error


class KnowUser(Msg):
    def __init__(self, user_id):
        self.user_id = user_id


class Connected(Msg):
    pass


class Disconnected(Msg):
    pass


class Live(Msg):
    def __init__(self, data):
        self.data = data


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
        self.online = False
        self.subscribed = False
        self.was_online = False       # a Connected after this is a reconnect
        self.idem = None              # (Idempotency-Key, body) of the last create: a resend reuses it


def init(_=None, online=False):
    return Model().but(online=online, was_online=online), [_load()]


def _load():
    return Http("GET", "/api/tokens", None, GotTokens, LoadFailed)


def _topic(model):
    return "users/" + model.user_id if isinstance(model.user_id, str) and model.user_id else None


def follow(model):
    if not model.online or model.subscribed or _topic(model) is None:
        return model, []
    return model.but(subscribed=True), [Send({"op": "subscribe", "topic": _topic(model)})]


def leave(model):
    return [Send({"op": "unsubscribe", "topic": _topic(model)})] if model.online and model.subscribed else []


def _live(model, data):
    if data.get("op") != "event" or data.get("topic") != _topic(model) or not isinstance(data.get("data"), dict):
        return model, []
    kind, token_id = data.get("type"), data["data"].get("token_id")
    if kind == "token.created":
        return model, [_load()]           # the list shows fields the event does not carry
    if kind == "token.revoked" and isinstance(token_id, str):
        new = model.new_token if model.new_token and model.new_token.get("id") != token_id else None
        return model.but(tokens=[t for t in model.tokens or () if t["id"] != token_id], new_token=new), []
    return model, []


def update(msg, model):
    if isinstance(msg, GotTokens):
        return model.but(tokens=msg.body.get("tokens") or []), []
    if isinstance(msg, LoadFailed):
        return model.but(tokens=[], error=msg.error.message), []
    if isinstance(msg, SetName):
        return model.but(name=msg.value, name_error=None), []
    if isinstance(msg, ToggleScope):
        scopes = tuple(s for s in SCOPES if (s in model.scopes) != (s == msg.scope))
        return model.but(scopes=scopes, form_error=None), []
    if isinstance(msg, SetExpiry):
        return model.but(days=msg.days), []
    if isinstance(msg, Create):
        name = model.name.strip()
        if model.saving:
            return model, []
        if not name:
            return model.but(name_error="Give the token a name, e.g. the script that uses it."), []
        if not model.scopes:
            return model.but(form_error="Choose at least one scope."), []
        body = {"name": name, "scopes": list(model.scopes), "expires_in_days": int(model.days)}
        idem = key_for(model.idem, body)
        return model.but(saving=True, form_error=None, idem=idem), [
            Http("POST", "/api/tokens", body, Created, CreateFailed, key=idem[0])]
    if isinstance(msg, Created):
        listed = dict(msg.token)
        listed.pop("token", None)
        return model.but(saving=False, name="", new_token=msg.token, idem=None,
                         tokens=[listed] + list(model.tokens or [])), []
    if isinstance(msg, CreateFailed):
        errors = msg.error.field_errors()
        return model.but(saving=False, name_error=errors.get("/name"),
                         form_error=None if list(errors) == ["/name"] else msg.error.message), []
    if isinstance(msg, DismissNew):
        return model.but(new_token=None), []
    if isinstance(msg, AskRevoke):
        return model.but(confirm=msg.token_id), []
    if isinstance(msg, Revoke):
        return model.but(confirm=None), [Http("DELETE", "/api/tokens/" + msg.token_id, None,
                                              lambda _, i=msg.token_id: Revoked(i), RevokeFailed)]
    if isinstance(msg, Revoked):
        new = model.new_token if model.new_token and model.new_token["id"] != msg.token_id else None
        return model.but(tokens=[t for t in model.tokens or () if t["id"] != msg.token_id], new_token=new), []
    if isinstance(msg, RevokeFailed):
        return model.but(error=msg.error.message), []
    if isinstance(msg, LogOutEverywhere):
        return model, [Http("POST", "/auth/logout-all", None, SessionEnded, LogOutFailed)]
    if isinstance(msg, LogOutHere):
        return model, [Http("POST", "/auth/logout", None, SessionEnded, LogOutFailed)]
    if isinstance(msg, LogOutFailed):
        return model.but(error=msg.error.message), []
    if isinstance(msg, KnowUser):
        return follow(model.but(user_id=msg.user_id))
    if isinstance(msg, Connected):
        # back after a drop: what changed meanwhile comes with the list
        m, fx = follow(model.but(online=True, subscribed=False, was_online=True))
        return m, fx + ([_load()] if model.tokens is not None and model.was_online else [])
    if isinstance(msg, Disconnected):
        return model.but(online=False, subscribed=False), []
    if isinstance(msg, Live):
        return _live(model, msg.data)
    return model, []


# ---------------------------------------------------------------- view

def _token_row(t, confirming):
    label = "Revoke token " + t["name"]
    if confirming:
        actions = [h("span", {}, "Revoke it? "),
                   h("button", {"type": "button", "class": "danger", "onclick": Revoke(t["id"]),
                                "aria-label": "Confirm: revoke token " + t["name"]}, "Yes, revoke"),
                   h("button", {"type": "button", "class": "secondary", "onclick": AskRevoke(None)}, "Keep")]
    else:
        actions = [h("button", {"type": "button", "class": "secondary", "onclick": AskRevoke(t["id"]),
                                "aria-label": label}, "Revoke")]
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
                    "class": "mono", "onfocus": lambda ev: ev.target.select()}),
        h("button", {"type": "button", "class": "secondary", "onclick": DismissNew()}, "I have copied it"),
    ])


def view(model):
    if model.tokens is None:
        listing = h("p", {"class": "muted"}, "Loading tokens…")
    elif not model.tokens:
        listing = h("p", {"class": "muted"}, "No API tokens.")
    else:
        listing = h("div", {"class": "table-wrap"}, h("table", {"aria-label": "API tokens"}, [
            h("thead", {}, h("tr", {}, [h("th", {"scope": "col"}, c) for c in
                                        ("Name", "Scopes", "Created", "Expires", "Last used", "")])),
            h("tbody", {}, [memo(_token_row, t, model.confirm == t["id"], key=t["id"]) for t in model.tokens]),
        ]))
    name_err = model.name_error
    form = h("form", {"class": "card", "novalidate": True, "onsubmit": Create(), "aria-labelledby": "new-token"}, [
        h("h3", {"id": "new-token"}, "New token"),
        h("div", {"class": "field" + (" invalid" if name_err else "")}, [
            h("label", {"for": "token-name"}, "Name"),
            h("input", {"id": "token-name", "type": "text", "autocomplete": "off", "value": model.name,
                        "oninput": lambda ev: SetName(ev.target.value), "aria-invalid": "true" if name_err else None,
                        "aria-describedby": "token-name-error" if name_err else None}),
            name_err and h("p", {"class": "field-error", "id": "token-name-error"}, name_err),
        ]),
        h("fieldset", {"class": "field"}, [
            h("legend", {}, "Scopes"),
            h("div", {"class": "checks"}, [h("label", {"class": "check"}, [
                h("input", {"type": "checkbox", "name": "scope", "value": s, "checked": s in model.scopes,
                            "onchange": ToggleScope(s)}), " " + s]) for s in SCOPES]),
        ]),
        h("div", {"class": "field"}, [
            h("label", {"for": "token-expiry"}, "Expires after"),
            h("select", {"id": "token-expiry", "onchange": lambda ev: SetExpiry(ev.target.value)},
              [h("option", {"value": v, "selected": model.days == v}, label) for v, label in EXPIRY]),
        ]),
        model.form_error and h("p", {"class": "alert", "role": "alert"}, model.form_error),
        h("button", {"type": "submit", "disabled": model.saving}, "Creating…" if model.saving else "Create token"),
    ])
    return h("section", {"aria-labelledby": "account-title"}, [
        h("h1", {"id": "account-title"}, "Account"),
        model.error and h("p", {"class": "alert", "role": "alert"}, model.error),
        h("h2", {}, "API tokens"),
        model.new_token and _new_token(model.new_token),
        listing,
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

"""The admin page: system health and backups, users and roles (and their sign-in
identities, to settle an identity_conflict), the audit log, and usage over time drawn as an
SVG chart (chart.py). Every part loads on its own; a 403 says who may look. Follows the
`system` topic (administrators only): readiness changes and new users load again."""

from runtime import Update, Http, Live, h, memo, Record
from ui import alert, note, select, table, typed
import chart
import fmt

AUDIT_PAGE = 25
USAGE_DAYS = 30


class Model(Record):
    def __init__(self):
        self.health = None            # the readiness body; None while loading
        self.health_error = None
        self.users = None
        self.users_error = None
        self.user_query = ""
        self.user_error = None        # a failed role / disable change
        self.identities_of = None     # the user whose sign-in identities are shown
        self.identities = None        # their identities; None while loading
        self.identities_error = None
        self.unlink_confirm = None    # (provider, subject) whose removal awaits confirmation
        self.audit = None
        self.audit_next = None
        self.audit_before = None      # the page shown (None: newest)
        self.audit_pages = ()         # cursors of the pages before this one, for "Newer"
        self.audit_filter = {"action": "", "outcome": ""}
        self.audit_error = None
        self.usage = None
        self.usage_error = None


def audit_request(model, before=None):
    params = dict(model.audit_filter, limit=AUDIT_PAGE, before=before)
    return Http("GET", "/api/admin/audit" + fmt.query(params), None, lambda body: GotAudit(body, before), AuditFailed)


def users_request(q):
    return Http("GET", "/api/admin/users" + fmt.query({"limit": 200, "q": q}), None, GotUsers, UsersFailed)


def identities_request(user_id):
    return Http("GET", "/api/admin/users/%s/identities" % user_id, None, lambda body: GotIdentities(user_id, body),
                IdentitiesFailed)


def health_request():
    return Http("GET", "/api/admin/health", None, GotHealth, HealthFailed)


def init(_=None):
    model = Model()
    return model, [
        health_request(),
        users_request(""),
        audit_request(model),
        Http("GET", "/api/admin/usage" + fmt.query({"days": USAGE_DAYS}), None, GotUsage, UsageFailed),
    ]


def subscriptions(model):
    """`system`, live only: readiness changes and new users (a member is refused, and that is all)."""
    return {"system": None}


def _why(error):
    if error.status == 403:
        return "Only administrators can see this."
    if error.status == 404:
        return "This server does not offer it yet."
    return error.message


on = Update()
update = on.update


@on("body")
def GotHealth(model, body):
    return model.but(health=body, health_error=None)


@on("error")
def HealthFailed(model, error):
    if error.status == 503 and isinstance(error.body, dict) and "checks" in error.body:
        return model.but(health=error.body, health_error=None)   # failing, but it says why
    return model.but(health_error=_why(error))


@on("body")
def GotUsers(model, body):
    return model.but(users=body.get("users") or [], users_error=None)


@on("error")
def UsersFailed(model, error):
    return model.but(users=[], users_error=_why(error))


@on("value")
def SetUserQuery(model, value):
    return model.but(user_query=value)


@on()
def SearchUsers(model):
    return model, [users_request(model.user_query.strip())]


@on("user_id role")
def SetRole(model, user_id, role):
    return model.but(user_error=None), [Http("PATCH", "/api/admin/users/" + user_id, {"role": role},
                                             UserSaved, UserFailed)]


@on("user_id disabled")
def SetDisabled(model, user_id, disabled):
    return model.but(user_error=None), [Http("PATCH", "/api/admin/users/" + user_id, {"disabled": disabled},
                                             UserSaved, UserFailed)]


@on("user")
def UserSaved(model, user):
    return model.but(users=[user if u["id"] == user["id"] else u for u in model.users or ()])


@on("error")
def UserFailed(model, error):
    # the select shows the old value again: re-render from the unchanged list
    return model.but(user_error=error.message, users=list(model.users or ()))


@on("user_id")
def ShowIdentities(model, user_id):
    if model.identities_of == user_id:   # the same button again hides them
        return model.but(identities_of=None, identities=None, identities_error=None, unlink_confirm=None)
    return (model.but(identities_of=user_id, identities=None, identities_error=None, unlink_confirm=None),
            [identities_request(user_id)])


@on("user_id body")
def GotIdentities(model, user_id, body):
    if user_id != model.identities_of:   # an answer for a user no longer shown
        return model
    return model.but(identities=body.get("identities") or [], identities_error=None)


@on("error")
def IdentitiesFailed(model, error):
    return model.but(identities=None, identities_error=_why(error))


@on("key")
def AskUnlink(model, key):
    """Ask to confirm removing an identity: key is (provider, subject), or None (keep it)."""
    return model.but(unlink_confirm=key)


@on("user_id provider subject")
def Unlink(model, user_id, provider, subject):
    url = "/api/admin/users/%s/identities/%s/%s" % (user_id, fmt.quote(provider), fmt.quote(subject))
    return model.but(unlink_confirm=None, identities_error=None), [Http(
        "DELETE", url, None, lambda _: Unlinked(user_id, provider, subject), UnlinkFailed)]


@on("error")
def UnlinkFailed(model, error):
    return model.but(identities_error=error.message, identities=list(model.identities or ()))


@on("user_id provider subject")
def Unlinked(model, user_id, provider, subject):
    if user_id != model.identities_of:
        return model
    return model.but(identities=[i for i in model.identities or () if (i["provider"], i["subject"]) != (provider, subject)])


@on("body before")
def GotAudit(model, body, before):
    return model.but(audit=body.get("entries") or [], audit_next=body.get("next"), audit_before=before,
                     audit_error=None)


@on("error")
def AuditFailed(model, error):
    return model.but(audit=[], audit_error=_why(error))


@on("field value")
def SetAuditFilter(model, field, value):
    f = dict(model.audit_filter)
    f[field] = value
    return model.but(audit_filter=f)


@on()
def FilterAudit(model):
    return model.but(audit_pages=()), [audit_request(model)]


@on("before")
def AuditPage(model, before):
    """Go to an older page (before = the cursor) or back to the newest (before = None)."""
    if before is None:
        pages = model.audit_pages[:-1]
        before = model.audit_pages[-1] if model.audit_pages else None
    else:
        pages = model.audit_pages + (model.audit_before,)
    return model.but(audit_pages=pages), [audit_request(model, before)]


@on("body")
def GotUsage(model, body):
    return model.but(usage=body.get("usage") or [], usage_error=None)


@on("error")
def UsageFailed(model, error):
    return model.but(usage=[], usage_error=_why(error))


@on(Live)
def _live(model, data):
    if data.get("topic") != "system" or data.get("op") != "event":
        return model
    if data.get("type") == "system.readiness":
        return model, [health_request()]
    if data.get("type") == "system.user_created":
        return model, [users_request(model.user_query.strip())]
    return model


# ---------------------------------------------------------------- view

def _check_row(name, check):
    ok = check.get("ok")
    details = []
    for k in sorted(check):
        if k in ("ok", "last_drill"):
            continue
        v = check[k]
        if v is not None and v != "":
            details.append("%s: %s" % (k.replace("_", " "), v))
    drill = check.get("last_drill")
    if isinstance(drill, dict):
        details.append("last drill: %s at %s%s" % ("ok" if drill.get("ok") else "FAILED", fmt.when(drill.get("at")),
                                                   (" (" + drill["reason"] + ")") if drill.get("reason") else ""))
    elif "last_drill" in check:
        details.append("last drill: none yet")
    return h("tr", {}, [
        h("th", {"scope": "row"}, name),
        h("td", {}, h("span", {"class": "status " + ("s-succeeded" if ok else "s-failed")}, "OK" if ok else "Failing")),
        h("td", {"class": "muted"}, "; ".join(details)),
    ])


def _health(model):
    if model.health_error:
        return alert(model.health_error)
    if model.health is None:
        return note("Checking…")
    body = model.health
    status = body.get("status", "fail")
    label = {"ok": "All systems ready", "degraded": "Degraded: " + ", ".join(body.get("degraded") or ()),
             "fail": "Not ready: " + ", ".join(body.get("failing") or ())}.get(status, status)
    checks = body.get("checks") or {}
    return h("div", {}, [
        h("p", {"class": "status-line"}, h("span", {"class": "status s-" + {"ok": "succeeded", "degraded": "waiting_for_input"}
                                                   .get(status, "failed")}, label)),
        table("Health checks", ("Check", "State", "Details"),
              [_check_row(name, checks[name]) for name in ("database", "writes", "schema", "disk", "backup")
               if isinstance(checks.get(name), dict)]),
        "backup" not in checks and note("Backups are not enabled on this server."),
    ])


def _user_row(u):
    name = u.get("email")
    return h("tr", {"class": "disabled" if u.get("disabled") else ""}, [
        h("td", {}, u.get("email")),
        h("td", {}, u.get("name") or ""),
        h("td", {}, select({"aria-label": "Role of " + name}, (("member", "member"), ("admin", "admin")),
                           u.get("role"), lambda ev, i=u["id"]: SetRole(i, ev.target.value))),
        h("td", {}, [
            h("span", {"class": "status " + ("s-failed" if u.get("disabled") else "s-succeeded")},
              "Disabled" if u.get("disabled") else "Active"), " ",
            h("button", {"type": "button", "class": "secondary" if u.get("disabled") else "danger",
                         "aria-label": ("Enable " if u.get("disabled") else "Disable ") + name,
                         "onclick": SetDisabled(u["id"], not u.get("disabled"))},
              "Enable" if u.get("disabled") else "Disable")]),
        h("td", {}, fmt.when(u.get("created_at"))),
        h("td", {}, h("button", {"type": "button", "class": "secondary", "aria-label": "Sign-in identities of " + name,
                                 "onclick": ShowIdentities(u["id"])}, "Identities")),
    ])


def _identity_row(user_id, i, confirming):
    key = (i["provider"], i["subject"])
    if confirming:
        action = [h("button", {"type": "button", "class": "danger",
                               "onclick": Unlink(user_id, i["provider"], i["subject"])}, "Remove"), " ",
                  h("button", {"type": "button", "class": "secondary", "onclick": AskUnlink(None)}, "Keep")]
    else:
        action = h("button", {"type": "button", "class": "secondary",
                              "aria-label": "Remove %s identity %s" % (i["provider"], i["subject"]),
                              "onclick": AskUnlink(key)}, "Remove…")
    return h("tr", {}, [h("td", {}, i["provider"]), h("td", {}, h("code", {}, i["subject"])), h("td", {}, i["email"]),
                        h("td", {}, fmt.when(i.get("last_login_at"))), h("td", {}, action)])


def _identities(model):
    if model.identities_of is None:
        return None
    who = model.identities_of
    for u in model.users or ():
        if u["id"] == model.identities_of:
            who = u.get("email")
    if model.identities is None:
        body = None if model.identities_error else note("Loading identities…")
    elif not model.identities:
        body = note("No identity at a provider: this user signs in with links an admin makes.")
    else:
        body = table("Sign-in identities", ("Provider", "Subject", "Email", "Last sign-in", ""),
                     [_identity_row(model.identities_of, i, model.unlink_confirm == (i["provider"], i["subject"]))
                      for i in model.identities])
    return h("section", {"class": "identities", "aria-label": "Sign-in identities"}, [
        h("h3", {}, "Sign-in identities of " + who),
        note("Remove an identity only once you know the person: that provider account then no longer signs in "
             "here, and the next sign-in at that provider with this verified address joins this account (how an "
             "identity conflict is settled)."),
        alert(model.identities_error),
        body,
    ])


def _users(model):
    search = h("form", {"class": "row", "role": "search", "onsubmit": SearchUsers()}, [
        h("label", {"for": "user-q"}, "Find"),
        h("input", {"id": "user-q", "type": "search", "value": model.user_query, "placeholder": "email or name",
                    "oninput": typed(SetUserQuery)}),
        h("button", {"type": "submit", "class": "secondary"}, "Search"),
    ])
    if model.users_error:
        body = alert(model.users_error)
    elif model.users is None:
        body = note("Loading users…")
    elif not model.users:
        body = note("No users match.")
    else:
        body = table("Users", ("Email", "Name", "Role", "State", "Created", ""),
                     [memo(_user_row, u, key=u["id"]) for u in model.users])
    return [search, alert(model.user_error), body, _identities(model)]


def _audit_row(e):
    details = e.get("details") or {}
    return h("tr", {"class": "failure" if e.get("outcome") == "failure" else ""}, [
        h("td", {}, fmt.when(e.get("at"))),
        h("td", {}, h("code", {}, e.get("action", ""))),
        h("td", {}, e.get("outcome", "")),
        h("td", {}, (e.get("actor_id") or "—")[:8]),
        h("td", {}, e.get("target", "")),
        h("td", {}, e.get("ip", "")),
        h("td", {"class": "muted"}, ", ".join("%s=%s" % (k, details[k]) for k in sorted(details))),
    ])


def _audit(model):
    f = model.audit_filter
    filters = h("form", {"class": "row", "onsubmit": FilterAudit(), "aria-label": "Filter the audit log"}, [
        h("label", {"for": "audit-action"}, "Action"),
        h("input", {"id": "audit-action", "type": "text", "value": f["action"], "placeholder": "e.g. auth.signin",
                    "oninput": lambda ev: SetAuditFilter("action", ev.target.value)}),
        h("label", {"for": "audit-outcome"}, "Outcome"),
        select({"id": "audit-outcome"}, (("", "Any"), ("success", "Success"), ("failure", "Failure")), f["outcome"],
               lambda ev: SetAuditFilter("outcome", ev.target.value)),
        h("button", {"type": "submit", "class": "secondary"}, "Filter"),
    ])
    if model.audit_error:
        body = alert(model.audit_error)
    elif model.audit is None:
        body = note("Loading the audit log…")
    elif not model.audit:
        body = note("No entries.")
    else:
        body = table("Audit log", ("When (UTC)", "Action", "Outcome", "Actor", "Target", "IP", "Details"),
                     [memo(_audit_row, e, key=e["id"]) for e in model.audit])
    pager = h("div", {"class": "row"}, [
        h("button", {"type": "button", "class": "secondary", "disabled": model.audit_before is None,
                     "onclick": AuditPage(None)}, "Newer"),
        h("button", {"type": "button", "class": "secondary", "disabled": model.audit_next is None,
                     "onclick": AuditPage(model.audit_next)}, "Older"),
    ])
    return [filters, body, pager]


def _usage(model):
    if model.usage_error:
        return alert(model.usage_error)
    if model.usage is None:
        return note("Loading usage…")
    if not model.usage:
        return note("No tokens used in the last %d days." % USAGE_DAYS)
    return h("figure", {"class": "usage"}, [
        memo(chart.usage, model.usage, USAGE_DAYS),
        h("figcaption", {"class": "legend"}, [
            h("span", {"class": "key prompt"}, ""), " prompt tokens ",
            h("span", {"class": "key completion"}, ""), " completion tokens"]),
    ])


def view(model):
    return h("section", {"aria-labelledby": "admin-title", "class": "admin"}, [
        h("h1", {"id": "admin-title"}, "Administration"),
        h("section", {"aria-labelledby": "health-title", "class": "card"}, [
            h("h2", {"id": "health-title"}, "System health and backups"), _health(model)]),
        h("section", {"aria-labelledby": "usage-heading", "class": "card"}, [
            h("h2", {"id": "usage-heading"}, "Usage, last %d days" % USAGE_DAYS), _usage(model)]),
        h("section", {"aria-labelledby": "users-title", "class": "card"}, [
            h("h2", {"id": "users-title"}, "Users and roles")] + _users(model)),
        h("section", {"aria-labelledby": "audit-title", "class": "card"}, [
            h("h2", {"id": "audit-title"}, "Audit log")] + _audit(model)),
    ])

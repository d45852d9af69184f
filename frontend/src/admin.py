"""The admin page: system health and backups, users and roles (admin_users.py: their sign-in
identities too, to settle an identity_conflict), the audit log, and usage over time drawn as an
SVG chart (chart.py). Every part loads on its own; a 403 says who may look. Follows the
`system` topic (administrators only): readiness changes and new users load again."""

from runtime import Update, Http, Live, h, memo, Record
from ui import alert, listing, note, select, table
from admin_users import why, users_request
import admin_users
import admin_mcp
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
        self.mcp = None               # the MCP servers (admin_mcp.py); None while loading
        self.mcp_error = None
        self.mcp_refreshing = None    # the server being asked for its tools now


def audit_request(model, before=None):
    params = dict(model.audit_filter, limit=AUDIT_PAGE, before=before)
    return Http("GET", "/api/admin/audit" + fmt.query(params), None, lambda body: GotAudit(body, before), AuditFailed)


def health_request():
    return Http("GET", "/api/admin/health", None, GotHealth, HealthFailed)


def init(_=None):
    model = Model()
    return model, [
        health_request(),
        users_request(""),
        audit_request(model),
        Http("GET", "/api/admin/usage" + fmt.query({"days": USAGE_DAYS}), None, GotUsage, UsageFailed),
        admin_mcp.servers_request(),
    ]


def subscriptions(model):
    """`system`, live only: readiness changes and new users (a member is refused, and that is all)."""
    return {"system": None}


on = Update(admin_users.on, admin_mcp.on)
update = on.update


@on("body")
def GotHealth(model, body):
    return model.but(health=body, health_error=None)


@on("error")
def HealthFailed(model, error):
    if error.status == 503 and isinstance(error.body, dict) and "checks" in error.body:
        return model.but(health=error.body, health_error=None)   # failing, but it says why
    return model.but(health_error=why(error))


@on("body before")
def GotAudit(model, body, before):
    return model.but(audit=body.get("entries") or [], audit_next=body.get("next"), audit_before=before,
                     audit_error=None)


@on("error")
def AuditFailed(model, error):
    return model.but(audit=[], audit_error=why(error))


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
    return model.but(usage=[], usage_error=why(error))


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
              [_check_row(name, checks[name]) for name in ("database", "writes", "schema", "disk", "backup", "mcp")
               if isinstance(checks.get(name), dict)]),
        "backup" not in checks and note("Backups are not enabled on this server."),
    ])


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
    body = listing(model.audit, "Loading the audit log…", "No entries.", lambda entries: table(
        "Audit log", ("When (UTC)", "Action", "Outcome", "Actor", "Target", "IP", "Details"),
        [memo(_audit_row, e, key=e["id"]) for e in entries]), model.audit_error)
    pager = h("div", {"class": "row"}, [
        h("button", {"type": "button", "class": "secondary", "disabled": model.audit_before is None,
                     "onclick": AuditPage(None)}, "Newer"),
        h("button", {"type": "button", "class": "secondary", "disabled": model.audit_next is None,
                     "onclick": AuditPage(model.audit_next)}, "Older"),
    ])
    return [filters, body, pager]


def _usage(model):
    return listing(model.usage, "Loading usage…", "No tokens used in the last %d days." % USAGE_DAYS,
                   lambda usage: h("figure", {"class": "usage"}, [
                       memo(chart.usage, usage, USAGE_DAYS),
                       h("figcaption", {"class": "legend"}, [
                           h("span", {"class": "key prompt"}, ""), " prompt tokens ",
                           h("span", {"class": "key completion"}, ""), " completion tokens"]),
                   ]), model.usage_error)


def view(model):
    return h("section", {"aria-labelledby": "admin-title", "class": "admin"}, [
        h("h1", {"id": "admin-title"}, "Administration"),
        h("section", {"aria-labelledby": "health-title", "class": "card"}, [
            h("h2", {"id": "health-title"}, "System health and backups"), _health(model)]),
        h("section", {"aria-labelledby": "usage-heading", "class": "card"}, [
            h("h2", {"id": "usage-heading"}, "Usage, last %d days" % USAGE_DAYS), _usage(model)]),
        h("section", {"aria-labelledby": "users-title", "class": "card"}, [
            h("h2", {"id": "users-title"}, "Users and roles")] + admin_users.section(model)),
        h("section", {"aria-labelledby": "mcp-title", "class": "card"}, [
            h("h2", {"id": "mcp-title"}, "MCP servers")] + admin_mcp.section(model)),
        h("section", {"aria-labelledby": "audit-title", "class": "card"}, [
            h("h2", {"id": "audit-title"}, "Audit log")] + _audit(model)),
    ])

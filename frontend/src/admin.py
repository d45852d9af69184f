"""The admin page: system health and backups, users and roles (and their sign-in
identities, to settle an identity_conflict), the audit log, and usage over time drawn as an
SVG chart. Every part loads on its own; a 403 says who may look."""

from runtime import Msg, Http, Send, h, memo, Record
import fmt

AUDIT_PAGE = 25
USAGE_DAYS = 30


class Msg(Msg):
    pass


class GotHealth(Msg):
    def __init__(self, body):
        self.body = body


class HealthFailed(Msg):
    def __init__(self, error):
        self.error = error


class GotUsers(Msg):
    def __init__(self, body):
        self.body = body


class UsersFailed(Msg):
    def __init__(self, error):
        self.error = error


class SetUserQuery(Msg):
    def __init__(self, value):
        self.value = value


class SearchUsers(Msg):
    pass


class SetRole(Msg):
    def __init__(self, user_id, role):
        self.user_id, self.role = user_id, role


class SetDisabled(Msg):
    def __init__(self, user_id, disabled):
        self.user_id, self.disabled = user_id, disabled


class UserSaved(Msg):
    def __init__(self, user):
        self.user = user


class UserFailed(Msg):
    def __init__(self, error):
        self.error = error


class ShowIdentities(Msg):
    def __init__(self, user_id):
        self.user_id = user_id


class GotIdentities(Msg):
    def __init__(self, user_id, body):
        self.user_id, self.body = user_id, body


class IdentitiesFailed(Msg):
    def __init__(self, error):
        self.error = error


class UnlinkFailed(Msg):
    def __init__(self, error):
        self.error = error


class AskUnlink(Msg):
    def __init__(self, key):
        self.key = key                # (provider, subject) awaiting confirmation, or None


class Unlink(Msg):
    def __init__(self, user_id, provider, subject):
        self.user_id, self.provider, self.subject = user_id, provider, subject


class Unlinked(Msg):
    def __init__(self, user_id, provider, subject):
        self.user_id, self.provider, self.subject = user_id, provider, subject


class GotAudit(Msg):
    def __init__(self, body, before=None):
        self.body, self.before = body, before


class AuditFailed(Msg):
    def __init__(self, error):
        self.error = error


class SetAuditFilter(Msg):
    def __init__(self, field, value):
        self.field, self.value = field, value


class FilterAudit(Msg):
    pass


class AuditPage(Msg):
    """Go to an older page (before = the cursor) or back to the newest (before = None)."""

    def __init__(self, before):
        self.before = before


class GotUsage(Msg):
    def __init__(self, body):
        self.body = body


class UsageFailed(Msg):
    def __init__(self, error):
        self.error = error


class Connected(Msg):
    pass


class Disconnected(Msg):
    pass


class Live(Msg):
    def __init__(self, data):
        self.data = data


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
        self.following = False        # subscribed to the `system` topic (readiness changes, new users)


def audit_request(model, before=None):
    params = dict(model.audit_filter, limit=AUDIT_PAGE, before=before)
    return Http("GET", "/api/admin/audit" + fmt.query(params), None,
                lambda body, b=before: GotAudit(body, b), AuditFailed)


def users_request(q):
    return Http("GET", "/api/admin/users" + fmt.query({"limit": 200, "q": q}), None, GotUsers, UsersFailed)


def identities_request(user_id):
    return Http("GET", "/api/admin/users/%s/identities" % user_id, None,
                lambda body, u=user_id: GotIdentities(u, body), IdentitiesFailed)


def health_request():
    return Http("GET", "/api/admin/health", None, GotHealth, HealthFailed)


def leave(model):
    return [Send({"op": "unsubscribe", "topic": "system"})] if model.following else []


def init(_=None):
    model = Model()
    return model, [
        health_request(),
        users_request(""),
        audit_request(model),
        Http("GET", "/api/admin/usage" + fmt.query({"days": USAGE_DAYS}), None, GotUsage, UsageFailed),
    ]


def _why(error):
    if error.status == 403:
        return "Only administrators can see this."
    if error.status == 404:
        return "This server does not offer it yet."
    return error.message


def update(msg, model):
    if isinstance(msg, GotHealth):
        return model.but(health=msg.body, health_error=None), []
    if isinstance(msg, HealthFailed):
        body = msg.error.body
        if msg.error.status == 503 and isinstance(body, dict) and "checks" in body:
            return model.but(health=body, health_error=None), []   # failing, but it says why
        return model.but(health_error=_why(msg.error)), []
    if isinstance(msg, GotUsers):
        return model.but(users=msg.body.get("users") or [], users_error=None), []
    if isinstance(msg, UsersFailed):
        return model.but(users=[], users_error=_why(msg.error)), []
    if isinstance(msg, SetUserQuery):
        return model.but(user_query=msg.value), []
    if isinstance(msg, SearchUsers):
        return model, [users_request(model.user_query.strip())]
    if isinstance(msg, SetRole):
        return model.but(user_error=None), [Http("PATCH", "/api/admin/users/" + msg.user_id, {"role": msg.role},
                                                 UserSaved, UserFailed)]
    if isinstance(msg, SetDisabled):
        return model.but(user_error=None), [Http("PATCH", "/api/admin/users/" + msg.user_id,
                                                 {"disabled": msg.disabled}, UserSaved, UserFailed)]
    if isinstance(msg, UserSaved):
        users = [msg.user if u["id"] == msg.user["id"] else u for u in model.users or ()]
        return model.but(users=users), []
    if isinstance(msg, UserFailed):
        # the select shows the old value again: re-render from the unchanged list
        return model.but(user_error=msg.error.message, users=list(model.users or ())), []
    if isinstance(msg, ShowIdentities):
        if model.identities_of == msg.user_id:   # the same button again hides them
            return model.but(identities_of=None, identities=None, identities_error=None, unlink_confirm=None), []
        return (model.but(identities_of=msg.user_id, identities=None, identities_error=None, unlink_confirm=None),
                [identities_request(msg.user_id)])
    if isinstance(msg, GotIdentities):
        if msg.user_id != model.identities_of:   # an answer for a user no longer shown
            return model, []
        return model.but(identities=msg.body.get("identities") or [], identities_error=None), []
    if isinstance(msg, IdentitiesFailed):
        return model.but(identities=None, identities_error=_why(msg.error)), []
    if isinstance(msg, AskUnlink):
        return model.but(unlink_confirm=msg.key), []
    if isinstance(msg, Unlink):
        url = "/api/admin/users/%s/identities/%s/%s" % (msg.user_id, fmt.quote(msg.provider), fmt.quote(msg.subject))
        return model.but(unlink_confirm=None, identities_error=None), [Http(
            "DELETE", url, None, lambda _, m=msg: Unlinked(m.user_id, m.provider, m.subject), UnlinkFailed)]
    if isinstance(msg, UnlinkFailed):
        return model.but(identities_error=msg.error.message, identities=list(model.identities or ())), []
    if isinstance(msg, Unlinked):
        if msg.user_id != model.identities_of:
            return model, []
        return model.but(identities=[i for i in model.identities or ()
                                     if (i["provider"], i["subject"]) != (msg.provider, msg.subject)]), []
    if isinstance(msg, GotAudit):
        return model.but(audit=msg.body.get("entries") or [], audit_next=msg.body.get("next"),
                         audit_before=msg.before, audit_error=None), []
    if isinstance(msg, AuditFailed):
        return model.but(audit=[], audit_error=_why(msg.error)), []
    if isinstance(msg, SetAuditFilter):
        f = dict(model.audit_filter)
        f[msg.field] = msg.value
        return model.but(audit_filter=f), []
    if isinstance(msg, FilterAudit):
        return model.but(audit_pages=()), [audit_request(model)]
    if isinstance(msg, AuditPage):
        if msg.before is None:
            pages = model.audit_pages[:-1]
            before = model.audit_pages[-1] if model.audit_pages else None
        else:
            pages = model.audit_pages + (model.audit_before,)
            before = msg.before
        return model.but(audit_pages=pages), [audit_request(model, before)]
    if isinstance(msg, Connected):
        # `system` carries readiness changes and new users (administrators only; others get forbidden)
        return model.but(following=True), [Send({"op": "subscribe", "topic": "system"})]
    if isinstance(msg, Disconnected):
        return model.but(following=False), []
    if isinstance(msg, Live):
        data = msg.data
        if data.get("topic") != "system":
            return model, []
        if data.get("op") == "error" and data.get("code") == "forbidden":
            return model.but(following=False), []
        if data.get("op") == "event" and data.get("type") == "system.readiness":
            return model, [health_request()]
        if data.get("op") == "event" and data.get("type") == "system.user_created":
            return model, [users_request(model.user_query.strip())]
        return model, []
    if isinstance(msg, GotUsage):
        return model.but(usage=msg.body.get("usage") or [], usage_error=None), []
    if isinstance(msg, UsageFailed):
        return model.but(usage=[], usage_error=_why(msg.error)), []
    return model, []


# ---------------------------------------------------------------- usage chart (pure)

def daily(usage, days, today_ms=None):
    """[(day, prompt, completion)] summed over users and models, oldest first, missing days as 0.
    Without today_ms the days are those present in the data."""
    totals = {}
    for row in usage:
        p, c = totals.get(row["day"], (0, 0))
        totals[row["day"]] = (p + (row.get("prompt_tokens") or 0), c + (row.get("completion_tokens") or 0))
    if today_ms is None:
        present = sorted(totals)
        if not present:
            return []
        first, last = fmt.iso_ms(present[0] + "T00:00:00Z"), fmt.iso_ms(present[-1] + "T00:00:00Z")
        if first is None or last is None:
            keys = present
        else:                                  # every day from the first to the last, gaps as 0
            keys = [_day(first + i * 86400000) for i in range((last - first) // 86400000 + 1)]
    else:
        keys = [_day(today_ms - i * 86400000) for i in range(days - 1, -1, -1)]
    return [(k,) + totals.get(k, (0, 0)) for k in keys]


def _day(ms):
    # civil date from days since the epoch (inverse of fmt._days_from_civil)
    z = ms // 86400000 + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return "%04d-%02d-%02d" % (y + (m <= 2), m, d)


def chart(points, width=640, height=220):
    """Stacked bars (prompt + completion tokens per day) as SVG, with a title and axis labels."""
    left, bottom, top = 48, 28, 10
    n = max(1, len(points))
    peak = max([p + c for _, p, c in points] + [1])
    plot_h, plot_w = height - bottom - top, width - left - 8
    bar_w = min(plot_w / n, 48.0)             # a few days do not make slabs
    total = sum(p + c for _, p, c in points)
    kids = [h("title", {"id": "usage-title"}, "Tokens per day"),
            h("desc", {"id": "usage-desc"}, "%s tokens over %d days; the highest day used %s." % (
                fmt.count(total), len(points), fmt.count(peak if total else 0)))]
    for i in range(3):                         # grid lines at 0, half and the peak
        value = peak * i / 2
        y = top + plot_h - plot_h * i / 2
        kids.append(h("line", {"x1": left, "x2": width - 8, "y1": "%.1f" % y, "y2": "%.1f" % y, "class": "grid"}))
        kids.append(h("text", {"x": left - 6, "y": "%.1f" % (y + 4), "text-anchor": "end", "class": "axis"},
                      fmt.short(value)))
    for i, (day, p, c) in enumerate(points):
        x = left + i * bar_w + 1
        w = "%.1f" % max(1.0, bar_w - 2)
        hp, hc = plot_h * p / peak, plot_h * c / peak
        base = top + plot_h
        kids.append(h("g", {"class": "bar"}, [
            h("title", {}, "%s: %s prompt, %s completion tokens" % (day, fmt.count(p), fmt.count(c))),
            h("rect", {"x": "%.1f" % x, "y": "%.1f" % (base - hp), "width": w, "height": "%.1f" % hp,
                       "class": "prompt"}),
            h("rect", {"x": "%.1f" % x, "y": "%.1f" % (base - hp - hc), "width": w, "height": "%.1f" % hc,
                       "class": "completion"}),
        ]))
    if points:
        for i in sorted(set((0, n // 2, n - 1))):
            kids.append(h("text", {"x": "%.1f" % (left + (i + 0.5) * bar_w), "y": height - 8,
                                   "text-anchor": "middle", "class": "axis"}, points[i][0][5:]))
    return h("svg", {"viewBox": "0 0 %d %d" % (width, height), "class": "chart", "role": "img",
                     "aria-labelledby": "usage-title usage-desc"}, kids)


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
        return h("p", {"class": "alert", "role": "alert"}, model.health_error)
    if model.health is None:
        return h("p", {"class": "muted"}, "Checking…")
    body = model.health
    status = body.get("status", "fail")
    label = {"ok": "All systems ready", "degraded": "Degraded: " + ", ".join(body.get("degraded") or ()),
             "fail": "Not ready: " + ", ".join(body.get("failing") or ())}.get(status, status)
    checks = body.get("checks") or {}
    return h("div", {}, [
        h("p", {"class": "status-line"}, h("span", {"class": "status s-" + {"ok": "succeeded", "degraded": "waiting_for_input"}
                                                   .get(status, "failed")}, label)),
        h("div", {"class": "table-wrap"}, h("table", {"aria-label": "Health checks"}, [
            h("thead", {}, h("tr", {}, [h("th", {"scope": "col"}, c) for c in ("Check", "State", "Details")])),
            h("tbody", {}, [_check_row(name, checks[name]) for name in ("database", "writes", "schema", "disk", "backup")
                            if isinstance(checks.get(name), dict)]),
        ])),
        "backup" not in checks and h("p", {"class": "muted"}, "Backups are not enabled on this server."),
    ])


def _user_row(u):
    name = u.get("email")
    return h("tr", {"class": "disabled" if u.get("disabled") else ""}, [
        h("td", {}, u.get("email")),
        h("td", {}, u.get("name") or ""),
        h("td", {}, h("select", {"aria-label": "Role of " + name,
                                 "onchange": lambda ev, i=u["id"]: SetRole(i, ev.target.value)},
                      [h("option", {"value": r, "selected": u.get("role") == r}, r) for r in ("member", "admin")])),
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
    head = h("h3", {}, "Sign-in identities of " + who)
    note = h("p", {"class": "muted"}, "Remove an identity only once you know the person: that provider account then "
                                     "no longer signs in here, and the next sign-in at that provider with this "
                                     "verified address joins this account (how an identity conflict is settled).")
    alert = model.identities_error and h("p", {"class": "alert", "role": "alert"}, model.identities_error)
    if model.identities is None:
        body = None if model.identities_error else h("p", {"class": "muted"}, "Loading identities…")
    elif not model.identities:
        body = h("p", {"class": "muted"}, "No identity at a provider: this user signs in with links an admin makes.")
    else:
        body = h("div", {"class": "table-wrap"}, h("table", {"aria-label": "Sign-in identities"}, [
            h("thead", {}, h("tr", {}, [h("th", {"scope": "col"}, c) for c in
                                        ("Provider", "Subject", "Email", "Last sign-in", "")])),
            h("tbody", {}, [_identity_row(model.identities_of, i,
                                          model.unlink_confirm == (i["provider"], i["subject"]))
                            for i in model.identities]),
        ]))
    return h("section", {"class": "identities", "aria-label": "Sign-in identities"}, [head, note, alert, body])


def _users(model):
    search = h("form", {"class": "row", "role": "search", "onsubmit": SearchUsers()}, [
        h("label", {"for": "user-q"}, "Find"),
        h("input", {"id": "user-q", "type": "search", "value": model.user_query, "placeholder": "email or name",
                    "oninput": lambda ev: SetUserQuery(ev.target.value)}),
        h("button", {"type": "submit", "class": "secondary"}, "Search"),
    ])
    if model.users_error:
        body = h("p", {"class": "alert", "role": "alert"}, model.users_error)
    elif model.users is None:
        body = h("p", {"class": "muted"}, "Loading users…")
    elif not model.users:
        body = h("p", {"class": "muted"}, "No users match.")
    else:
        body = h("div", {"class": "table-wrap"}, h("table", {"aria-label": "Users"}, [
            h("thead", {}, h("tr", {}, [h("th", {"scope": "col"}, c) for c in
                                        ("Email", "Name", "Role", "State", "Created", "")])),
            h("tbody", {}, [memo(_user_row, u, key=u["id"]) for u in model.users]),
        ]))
    return [search, model.user_error and h("p", {"class": "alert", "role": "alert"}, model.user_error), body,
            _identities(model)]


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
        h("select", {"id": "audit-outcome", "onchange": lambda ev: SetAuditFilter("outcome", ev.target.value)}, [
            h("option", {"value": v, "selected": f["outcome"] == v}, label)
            for v, label in (("", "Any"), ("success", "Success"), ("failure", "Failure"))]),
        h("button", {"type": "submit", "class": "secondary"}, "Filter"),
    ])
    if model.audit_error:
        body = h("p", {"class": "alert", "role": "alert"}, model.audit_error)
    elif model.audit is None:
        body = h("p", {"class": "muted"}, "Loading the audit log…")
    elif not model.audit:
        body = h("p", {"class": "muted"}, "No entries.")
    else:
        body = h("div", {"class": "table-wrap"}, h("table", {"aria-label": "Audit log"}, [
            h("thead", {}, h("tr", {}, [h("th", {"scope": "col"}, c) for c in
                                        ("When (UTC)", "Action", "Outcome", "Actor", "Target", "IP", "Details")])),
            h("tbody", {}, [memo(_audit_row, e, key=e["id"]) for e in model.audit]),
        ]))
    pager = h("div", {"class": "row"}, [
        h("button", {"type": "button", "class": "secondary", "disabled": model.audit_before is None,
                     "onclick": AuditPage(None)}, "Newer"),
        h("button", {"type": "button", "class": "secondary", "disabled": model.audit_next is None,
                     "onclick": AuditPage(model.audit_next)}, "Older"),
    ])
    return [filters, body, pager]


def _chart_of(usage):
    return chart(daily(usage, USAGE_DAYS))


def _usage(model):
    if model.usage_error:
        return h("p", {"class": "alert", "role": "alert"}, model.usage_error)
    if model.usage is None:
        return h("p", {"class": "muted"}, "Loading usage…")
    if not model.usage:
        return h("p", {"class": "muted"}, "No tokens used in the last %d days." % USAGE_DAYS)
    return h("figure", {"class": "usage"}, [
        memo(_chart_of, model.usage),
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

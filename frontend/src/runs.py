"""The runs page: a live table of your runs (status, duration, tokens), filtered by status.

Live updates come over the one WebSocket: the page follows `users/{id}` (every
run.* status event of the user's runs, so runs started anywhere appear at once) and,
for their streamed detail, `threads/{id}` of the threads its runs belong to; a run it
has not seen is fetched. It resubscribes from its cursors after a drop."""

from runtime import Msg, Http, Navigate, Send, h, memo, Record
import fmt

STATUSES = ("queued", "running", "waiting_for_input", "succeeded", "failed", "cancelled", "interrupted")
ACTIVE = ("queued", "running", "waiting_for_input")
LABELS = {"queued": "Queued", "running": "Running", "waiting_for_input": "Waiting for you",
          "succeeded": "Succeeded", "failed": "Failed", "cancelled": "Cancelled", "interrupted": "Interrupted"}
EVENT_STATUS = {"run.queued": "queued", "run.started": "running", "run.waiting": "waiting_for_input",
                "run.succeeded": "succeeded", "run.failed": "failed", "run.cancelled": "cancelled",
                "run.interrupted": "interrupted"}
MAX_TOPICS = 50          # threads followed at once (the server allows 200 subscriptions per socket)


class Msg(Msg):
    pass


class GotRuns(Msg):
    def __init__(self, body):
        self.body = body


class LoadFailed(Msg):
    def __init__(self, error):
        self.error = error


class SetFilter(Msg):
    def __init__(self, status):
        self.status = status


class GotRun(Msg):
    def __init__(self, run):
        self.run = run


class Ignore(Msg):
    def __init__(self, _=None):
        pass


class Tick(Msg):
    def __init__(self, now):
        self.now = now


class Connected(Msg):
    pass


class Disconnected(Msg):
    pass


class Live(Msg):
    def __init__(self, data):
        self.data = data


class KnowUser(Msg):
    """The signed-in user's id (from /api/me): the page then follows users/{id}."""
    def __init__(self, user_id):
        self.user_id = user_id


class Model(Record):
    def __init__(self, status=None, online=False):
        self.status = status          # the filter; None: every status
        self.online = online
        self.runs = None              # newest first; None while loading
        self.error = None
        self.cursors = {}             # topic -> last seq seen
        self.subscribed = ()          # topics asked for on the current socket
        self.now = 0                  # ms, from the clock subscription (durations of active runs)
        self.was_online = online      # a Connected after this is a reconnect
        self.user_id = None           # users/{id} is followed once known


def url(status):
    return "/runs" + fmt.query({"status": status})


def init(query, online=False):
    status = query.get("status") if query.get("status") in STATUSES else None
    model = Model(status, online)
    return model, [Http("GET", "/api/runs" + fmt.query({"limit": 100, "status": status}), None, GotRuns, LoadFailed)]


def topic_of(run):
    """Chat runs are followed on their thread (it also announces new runs); workflow runs on themselves."""
    if run.get("thread_id"):
        return "threads/" + run["thread_id"]
    if run.get("status") in ACTIVE or run.get("status") == "interrupted":
        return "runs/" + run["id"]
    return None


def topics(model):
    seen, out = set(), []
    if isinstance(model.user_id, str) and model.user_id:
        out.append("users/" + model.user_id)
    for r in model.runs or ():
        t = topic_of(r)
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return out[:MAX_TOPICS]


def follow(model):
    """Subscribe to the topics not yet asked for on this socket (from each one's cursor)."""
    if not model.online or model.runs is None:
        return model, []
    effects, asked = [], list(model.subscribed)
    for t in topics(model):
        if t in asked:
            continue
        message = {"op": "subscribe", "topic": t}
        if t in model.cursors:
            message["after"] = model.cursors[t]
        effects.append(Send(message))
        asked.append(t)
    return model.but(subscribed=tuple(asked)), effects


def leave(model):
    if not model.online:
        return []
    return [Send({"op": "unsubscribe", "topic": t}) for t in model.subscribed]


def _matches(model, run):
    return model.status is None or run.get("status") == model.status


def _put(model, run):
    """Insert or replace one run, keeping newest first."""
    runs = [r for r in (model.runs or []) if r["id"] != run["id"]]
    if _matches(model, run) or any(r["id"] == run["id"] for r in model.runs or ()):
        runs.append(run)
    runs.sort(key=lambda r: r.get("created_at") or "", reverse=True)
    return model.but(runs=runs)


def _int(value, default):
    return value if type(value) is int and value >= 0 else default


def apply_event(model, data):
    topic, seq = data.get("topic"), data.get("seq")
    if type(seq) is not int or not isinstance(data.get("data"), dict):
        return model, []
    if topic in model.cursors and seq <= model.cursors[topic]:
        return model, []                     # already seen (replay overlap)
    cursors = dict(model.cursors)
    cursors[topic] = seq
    model = model.but(cursors=cursors)
    status = EVENT_STATUS.get(data.get("type"))
    ev = data.get("data") or {}
    run_id = ev.get("run_id")
    if status is None or not isinstance(run_id, str) or not run_id:
        return model, []
    known = [r for r in model.runs or () if r["id"] == run_id]
    if not known:
        return model, [Http("GET", "/api/runs/" + run_id, None, GotRun, Ignore)]
    run = dict(known[0], status=status)
    at = data.get("at")
    if status == "running" and not run.get("started_at"):
        run["started_at"] = at
    if status in ("succeeded", "failed", "cancelled"):
        run["finished_at"] = run.get("finished_at") or at
    if status == "succeeded":
        run["prompt_tokens"] = _int(ev.get("prompt_tokens"), run.get("prompt_tokens"))
        run["completion_tokens"] = _int(ev.get("completion_tokens"), run.get("completion_tokens"))
    if status == "failed":
        run["error"] = {"code": str(ev.get("code") or "failed"), "message": str(ev.get("message") or "")}
    runs = [run if r["id"] == run_id else r for r in model.runs]
    if not _matches(model, run):
        runs = [r for r in runs if r["id"] != run_id]
    return model.but(runs=runs), []


def update(msg, model):
    if isinstance(msg, GotRuns):
        # a reload of the list keeps the topics already followed (and their cursors)
        return follow(model.but(runs=msg.body.get("runs") or [], error=None))
    if isinstance(msg, LoadFailed):
        return model.but(runs=[], error=msg.error.message), []
    if isinstance(msg, SetFilter):
        status = msg.status if msg.status in STATUSES else None
        return model, [Navigate(url(status))]
    if isinstance(msg, GotRun):
        if not msg.run or not _matches(model, msg.run):
            return model, []
        return follow(_put(model, msg.run))
    if isinstance(msg, KnowUser):
        return follow(model.but(user_id=msg.user_id))
    if isinstance(msg, Tick):
        return model.but(now=msg.now), []
    if isinstance(msg, Connected):
        m, fx = follow(model.but(online=True, subscribed=(), was_online=True))
        if model.runs is not None and model.was_online:
            # back after a drop: runs started meanwhile in threads not followed yet come with the list
            fx = fx + [Http("GET", "/api/runs" + fmt.query({"limit": 100, "status": model.status}), None,
                            GotRuns, LoadFailed)]
        return m, fx
    if isinstance(msg, Disconnected):
        return model.but(online=False, subscribed=()), []
    if isinstance(msg, Live):
        op = msg.data.get("op")
        if msg.data.get("topic") not in topics(model):
            return model, []
        if op == "event":
            return apply_event(model, msg.data)
        if op == "subscribed" and type(msg.data.get("seq")) is int:
            cursors = dict(model.cursors)
            cursors[msg.data["topic"]] = max(msg.data["seq"], cursors.get(msg.data["topic"], 0))
            return model.but(cursors=cursors), []
    return model, []


def has_active(model):
    return any(r.get("status") in ACTIVE for r in model.runs or ())


# ---------------------------------------------------------------- view

def _row(run, now):
    status = run.get("status", "")
    tokens = (run.get("prompt_tokens") or 0) + (run.get("completion_tokens") or 0)
    err = run.get("error") or {}
    if run.get("thread_id"):
        link, kind = "/chat/" + run["thread_id"], "Chat"
    else:
        link, kind = "/workflows/%s?run=%s" % (run.get("workflow_id"), run["id"]), "Workflow"
    return h("tr", {"data-status": status}, [
        h("td", {}, [h("a", {"href": link, "aria-label": "%s run %s" % (kind, run["id"][:8])}, run["id"][:8]),
                     h("span", {"class": "muted small"}, " " + kind.lower())]),
        h("td", {}, h("span", {"class": "status s-" + status}, LABELS.get(status, status))),
        h("td", {"class": "num"}, fmt.duration(fmt.run_duration(run, now))),
        h("td", {"class": "num", "title": "prompt %s + completion %s" % (
            fmt.count(run.get("prompt_tokens")), fmt.count(run.get("completion_tokens")))}, fmt.count(tokens)),
        h("td", {}, run.get("model") or ""),
        h("td", {}, fmt.when(run.get("created_at"))),
        h("td", {"class": "muted"}, err.get("message") or ""),
    ])


def view(model):
    select = h("select", {"id": "runs-filter", "onchange": lambda ev: SetFilter(ev.target.value)}, [
        h("option", {"value": "", "selected": model.status is None}, "All statuses")] + [
        h("option", {"value": s, "selected": model.status == s}, LABELS[s]) for s in STATUSES])
    if model.runs is None:
        body = h("p", {"class": "muted"}, "Loading runs…")
    elif not model.runs:
        body = h("p", {"class": "muted"}, "No runs here yet." if model.status is None
                 else "No %s runs." % LABELS[model.status].lower())
    else:
        now = model.now if has_active(model) else 0
        body = h("div", {"class": "table-wrap"}, h("table", {"class": "runs", "aria-label": "Runs"}, [
            h("thead", {}, h("tr", {}, [h("th", {"scope": "col"}, c) for c in
                                        ("Run", "Status", "Duration", "Tokens", "Model", "Started (UTC)", "Note")])),
            h("tbody", {}, [memo(_row, r, now if r.get("status") in ACTIVE else 0, key=r["id"])
                            for r in model.runs]),
        ]))
    return h("section", {"aria-labelledby": "runs-title"}, [
        h("div", {"class": "titlebar"}, [
            h("h1", {"id": "runs-title"}, "Runs"),
            h("div", {"class": "field inline"}, [h("label", {"for": "runs-filter"}, "Status"), select]),
        ]),
        model.error and h("p", {"class": "alert", "role": "alert"}, model.error),
        h("p", {"class": "muted", "aria-live": "polite"},
          "Live" if model.online else "Not live: reconnecting…") if model.runs else None,
        body,
    ])

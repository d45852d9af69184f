"""The runs page: a live table of your runs (status, duration, tokens), filtered by status.

Live: the page follows `users/{id}` (every run.* status event of the user's runs, so runs
started anywhere appear at once) and, for their detail, `threads/{id}` of the threads its runs
belong to (`runs/{id}` for active workflow runs), each from the last seq it saw; a run it has
not seen is fetched. After a reconnect the list is fetched again."""

from runtime import Update, Http, Navigate, KnowUser, Connected, Disconnected, Live, Every, h, memo, Record
from ui import ACTIVE, STATUSES, EVENT_STATUS, LABELS, alert, badge, listing, select, table
import fmt

MAX_TOPICS = 50          # threads followed at once (the server allows 200 subscriptions per socket)


class Model(Record):
    def __init__(self, status=None):
        self.status = status          # the filter; None: every status
        self.online = False
        self.runs = None              # newest first; None while loading
        self.error = None
        self.cursors = {}             # topic -> last seq seen
        self.now = 0                  # ms, from the clock subscription (durations of active runs)
        self.user_id = None           # users/{id} is followed once known


def url(status):
    return "/runs" + fmt.query({"status": status})


def init(query):
    status = query.get("status") if query.get("status") in STATUSES else None
    model = Model(status)
    return model, [_load(model)]


def _load(model):
    return Http("GET", "/api/runs" + fmt.query({"limit": 100, "status": model.status}), None, GotRuns, LoadFailed)


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


def subscriptions(model):
    """Once the list is loaded: every topic of topics(), from the last seq seen on it."""
    if model.runs is None:
        return {}
    return {t: model.cursors.get(t) for t in topics(model)}


def clocks(model):
    """A clock while a run is going: its duration counts up."""
    return [Every(1000, Tick)] if has_active(model) else []


def has_active(model):
    return any(r.get("status") in ACTIVE for r in model.runs or ())


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
    if topic in model.cursors and seq <= model.cursors[topic]:
        return model                     # already seen (replay overlap)
    cursors = dict(model.cursors)
    cursors[topic] = seq
    model = model.but(cursors=cursors)
    status = EVENT_STATUS.get(data.get("type"))
    ev = data["data"]
    run_id = ev.get("run_id")
    if status is None or not isinstance(run_id, str) or not run_id:
        return model
    known = [r for r in model.runs or () if r["id"] == run_id]
    if not known:
        return model, [Http("GET", "/api/runs/" + run_id, None, GotRun, None)]
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
    return model.but(runs=runs)


on = Update()
update = on.update


@on("body")
def GotRuns(model, body):
    # a reload of the list keeps the cursors of the topics already followed
    return model.but(runs=body.get("runs") or [], error=None)


@on("error")
def LoadFailed(model, error):
    return model.but(runs=[], error=error.message)


@on("status")
def SetFilter(model, status):
    return model, [Navigate(url(status if status in STATUSES else None))]


@on("run")
def GotRun(model, run):
    if not run or not _matches(model, run):
        return model
    return _put(model, run)


@on("now")
def Tick(model, now):
    return model.but(now=now)


@on(KnowUser)
def _know_user(model, user_id):
    return model.but(user_id=user_id)


@on(Connected)
def _connected(model, again):
    # back after a drop: runs started meanwhile in threads not followed yet come with the list
    return model.but(online=True), [_load(model)] if again and model.runs is not None else []


@on(Disconnected)
def _disconnected(model):
    return model.but(online=False)


@on(Live)
def _live(model, data):
    topic = data.get("topic")
    if topic not in topics(model):
        return model
    if data.get("op") == "event":
        return apply_event(model, data)
    if data.get("op") == "subscribed":
        cursors = dict(model.cursors)
        cursors[topic] = max(data["seq"], cursors.get(topic, 0))
        return model.but(cursors=cursors)
    return model


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
        h("td", {}, badge(status)),
        h("td", {"class": "num"}, fmt.duration(fmt.run_duration(run, now))),
        h("td", {"class": "num", "title": "prompt %s + completion %s" % (
            fmt.count(run.get("prompt_tokens")), fmt.count(run.get("completion_tokens")))}, fmt.count(tokens)),
        h("td", {}, run.get("model") or ""),
        h("td", {}, fmt.when(run.get("created_at"))),
        h("td", {"class": "muted"}, err.get("message") or ""),
    ])


def _set_filter(ev):
    return SetFilter(ev.target.value)


def view(model):
    options = [("", "All statuses")] + [(s, LABELS[s]) for s in STATUSES]
    filter_ = select({"id": "runs-filter"}, options, model.status or "", _set_filter)
    now = model.now if has_active(model) else 0
    body = listing(model.runs, "Loading runs…", "No runs here yet." if model.status is None else
                   "No %s runs." % LABELS[model.status].lower(), lambda runs: table(
                       "Runs", ("Run", "Status", "Duration", "Tokens", "Model", "Started (UTC)", "Note"),
                       [memo(_row, r, now if r.get("status") in ACTIVE else 0, key=r["id"]) for r in runs], "runs"))
    return h("section", {"aria-labelledby": "runs-title"}, [
        h("div", {"class": "titlebar"}, [
            h("h1", {"id": "runs-title"}, "Runs"),
            h("div", {"class": "field inline"}, [h("label", {"for": "runs-filter"}, "Status"), filter_]),
        ]),
        alert(model.error),
        h("p", {"class": "muted", "aria-live": "polite"},
          "Live" if model.online else "Not live: reconnecting…") if model.runs else None,
        body,
    ])

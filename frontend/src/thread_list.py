"""The chat page's list of threads: fetched over REST, kept in step with users/<me>
(thread.created, thread.renamed, thread.deleted from any tab or script), and drawn at the
side. The page's model holds its fields: threads (None while loading), list_events, and
thread_id (the thread open). Searching the threads (issue 22) belongs here: a query field,
its request and results, and their place in `side`."""

from runtime import Update, Http, h, memo
from ui import note

EVENTS = ("thread.created", "thread.renamed", "thread.deleted")


def request():
    return Http("GET", "/api/threads?limit=100", None, lambda d: GotThreads(d["threads"]), ListFailed)


on = Update()


@on("threads")
def GotThreads(model, threads):
    # what users/<me> said while the request was on its way, again: the answer may
    # have been read before some of it (each event applies once, whatever the order)
    for kind, d in model.list_events or ():
        threads = listed(threads, kind, d)
    return model.but(threads=threads, list_events=None)


@on("error")
def ListFailed(model, error):
    return model.but(error=error.message, threads=model.threads or [], list_events=None)


def retitled(threads, thread_id, title):
    return threads and [dict(x, title=title) if x["id"] == thread_id else x for x in threads]


def without(threads, thread_id):
    return threads and [x for x in threads if x["id"] != thread_id]


def listed(threads, kind, d):
    """The thread list after one users/<me> event (None while loading stays None). Applying
    an event twice, or one the list already shows, changes nothing."""
    tid = d.get("thread_id")
    if threads is None or not isinstance(tid, str):
        return threads
    if kind == "thread.created":
        if not isinstance(d.get("title"), str) or any(x["id"] == tid for x in threads):
            return threads
        return [{"id": tid, "agent_id": d.get("agent_id"), "title": d["title"], "created_at": d.get("created_at"),
                 "updated_at": d.get("created_at")}] + threads
    if kind == "thread.renamed" and isinstance(d.get("title"), str):
        return retitled(threads, tid, d["title"])
    if kind == "thread.deleted":
        return without(threads, tid)
    return threads


def follow(model, kind, d):
    """The model after a thread event of users/<me>, or None for events that are not the list's."""
    tid = d.get("thread_id")
    if kind not in EVENTS or not isinstance(tid, str) or not tid or \
            (kind != "thread.deleted" and not isinstance(d.get("title"), str)):
        return None
    m = model.but(threads=listed(model.threads, kind, d))
    if m.list_events is not None:     # a list request is on its way: its answer may predate this
        m = m.but(list_events=m.list_events + [(kind, d)])
    return m


# ---------------------------------------------------------------- view

def _link(t, current):
    attrs = {"href": "/chat/" + t["id"]}
    if current:
        attrs["aria-current"] = "page"
    return h("li", {}, h("a", attrs, t.get("title") or "Untitled chat"))


def side(model):
    threads = model.threads
    return h("nav", {"class": "threads", "aria-label": "Threads"}, [
        h("h2", {}, "Threads"),
        note("Loading…") if threads is None else (
            h("ul", {}, [memo(_link, t, t["id"] == model.thread_id, key=t["id"]) for t in threads])
            if threads else note("No threads yet.")),
        h("p", {}, h("a", {"href": "/agents"}, "Start a chat from an agent")),
    ])

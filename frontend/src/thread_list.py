"""The chat page's list of threads: fetched over REST, kept in step with users/<me>
(thread.created, thread.renamed, thread.deleted from any tab or script), and drawn at the
side. The page's model holds its fields: threads (None while loading), list_events, and
thread_id (the thread open); and the search: query (the field), found and searched (the
results of GET /api/search and the query they answer: a late answer to an older query is
dropped)."""

from runtime import Update, Http, Delay, h, memo
from ui import note
import fmt

SEARCH_DELAY = 250      # ms after the last keystroke: one request per pause in typing, not per key

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


@on("query")
def SetQuery(model, query):
    """Typing in the search field: search once typing pauses; an empty field shows the list again."""
    if not query.strip():
        return model.but(query=query, found=None, searched=None)
    return model.but(query=query), [Delay(SEARCH_DELAY, Search(query))]


@on("query")
def Search(model, query):
    if query != model.query or query == model.searched or not query.strip():
        return model                     # typed on since, or already shown
    return model, [Http("GET", "/api/search" + fmt.query({"q": query[:200], "limit": "20"}), None,
                        lambda body, q=query: Found(q, body), lambda e, q=query: SearchFailed(q, e))]


@on("query body")
def Found(model, query, body):
    if query != model.query:
        return model
    return model.but(found={"threads": body.get("threads") or [], "messages": body.get("messages") or []},
                     searched=query)


@on("query error")
def SearchFailed(model, query, error):
    if query != model.query:
        return model
    return model.but(found={"threads": [], "messages": [], "error": error.message}, searched=query)


@on()
def ClearSearch(model):
    return model.but(query="", found=None, searched=None)


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


def highlighted(segments):
    """Search segments ({text, match}) as text with <mark>ed matches."""
    return [h("mark", {}, s.get("text", "")) if s.get("match") else s.get("text", "")
            for s in segments or () if isinstance(s, dict)]


def _typed(ev):         # one function for every render: the diff sees no new handler per frame
    return SetQuery(ev.target.value)


def _search_form(model):
    return h("form", {"class": "search", "role": "search", "onsubmit": Search(model.query)}, [
        h("input", {"id": "thread-search", "type": "search", "aria-label": "Search your chats", "placeholder": "Search chats…", "value": model.query,
                    "maxlength": "200", "autocomplete": "off",
                    "oninput": _typed}),
        model.query and h("button", {"type": "button", "class": "secondary small", "onclick": ClearSearch()},
                          "Clear")])


def _results(model):
    found = model.found
    if found.get("error"):
        return note(found["error"])
    items = [h("li", {"key": "t-" + t["id"]}, h("a", {"href": "/chat/" + t["id"]}, highlighted(t.get("highlight"))))
             for t in found["threads"]]
    items += [h("li", {"key": "m-" + m["id"], "class": "hit"}, h("a", {"href": "/chat/" + m["thread_id"]}, [
        h("span", {"class": "hit-thread"}, m.get("thread_title") or "Untitled chat"),
        h("span", {"class": "hit-snippet"}, [("You: " if m.get("role") == "user" else "")] +
          highlighted(m.get("snippet")))])) for m in found["messages"]]
    if not items:
        return note("Nothing found for “%s”." % model.searched)
    return h("ul", {"class": "search-results", "aria-label": "Search results"}, items)


def side(model):
    threads = model.threads
    return h("nav", {"class": "threads", "aria-label": "Threads"}, [
        h("h2", {}, "Threads"),
        _search_form(model),
        _results(model) if model.found is not None else None,
        None if model.found is not None else note("Loading…") if threads is None else (
            h("ul", {}, [memo(_link, t, t["id"] == model.thread_id, key=t["id"]) for t in threads])
            if threads else note("No threads yet.")),
        h("p", {}, h("a", {"href": "/agents"}, "Start a chat from an agent")),
    ])

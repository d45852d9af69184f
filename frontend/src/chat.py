"""The chat page: your threads, one thread's transcript with replies streamed
token by token over the WebSocket, and a composer."""

from runtime import Msg, Http, Send, h, memo


class Msg(Msg):
    pass


class GotThreads(Msg):
    def __init__(self, threads):
        self.threads = threads


class GotThread(Msg):
    def __init__(self, thread):
        self.thread = thread


class LoadFailed(Msg):
    def __init__(self, error):
        self.error = error


class SetComposer(Msg):
    def __init__(self, value):
        self.value = value


class SendMessage(Msg):
    pass


class Posted(Msg):
    def __init__(self, run):
        self.run = run


class PostFailed(Msg):
    def __init__(self, error):
        self.error = error


class Connected(Msg):
    """The live WebSocket (re)opened: (re)subscribe from the last seq seen."""


class Disconnected(Msg):
    pass


class Live(Msg):
    """A message from the WebSocket (event, subscribed, error, ...)."""

    def __init__(self, data):
        self.data = data


TERMINAL = ("succeeded", "failed", "cancelled", "interrupted")


class Model:
    def __init__(self, thread_id=None, online=False):
        self.thread_id = thread_id
        self.online = online
        self.threads = None          # the list on the side; None while loading
        self.title = None
        self.messages = []           # stored messages, oldest first (dicts as in the API)
        self.loaded = False
        self.streams = {}            # run id -> text streamed so far (message.delta)
        self.runs = {}               # run id -> status
        self.run_errors = {}         # run id -> why it failed
        self.composer = ""
        self.sending = False
        self.last_seq = None         # newest event seq seen on threads/<id>; None: not yet subscribed
        self.subscribed = False
        self.error = None
        self.local = 0               # counter for ids of messages not yet stored

    def but(self, **changes):
        m = Model()
        for k, v in self.__dict__.items():
            setattr(m, k, v)
        for k, v in changes.items():
            setattr(m, k, v)
        return m


def topic(model):
    return "threads/" + model.thread_id


def subscribe(model):
    """The subscribe message for this thread: replay from last_seq when we have one."""
    if not model.thread_id or not model.online:
        return []
    message = {"op": "subscribe", "topic": topic(model)}
    if model.last_seq is not None:
        message["after"] = model.last_seq
    return [Send(message)]


def init(thread_id, online):
    model = Model(thread_id, online)
    effects = [Http("GET", "/api/threads?limit=100", None, lambda d: GotThreads(d["threads"]), LoadFailed)]
    if thread_id:
        effects.append(Http("GET", "/api/threads/%s?limit=1000" % thread_id, None, GotThread, LoadFailed))
        effects += subscribe(model)
    return model, effects


def leave(model):
    """Effects when the page goes away: stop following the thread."""
    if model.thread_id and model.online and model.subscribed:
        return [Send({"op": "unsubscribe", "topic": topic(model)})]
    return []


def _merge(stored, known):
    """Stored messages plus those we already knew (from events) that the page of stored ones lacks."""
    ids = {m["id"] for m in stored}
    extra = [m for m in known if m["id"] not in ids and not m.get("pending")]
    return sorted(stored + extra, key=lambda m: m.get("seq") or 0) + [m for m in known if m.get("pending")]


def apply_event(model, event):
    """One event of threads/<id>, in seq order; events already seen are ignored."""
    seq = event.get("seq") or 0
    if model.last_seq is not None and seq <= model.last_seq:
        return model
    kind, data = event.get("type"), event.get("data") or {}
    run_id = data.get("run_id")
    m = model.but(last_seq=seq)
    if kind == "message.delta":
        streams = dict(m.streams)
        streams[run_id] = streams.get(run_id, "") + data.get("text", "")
        runs = dict(m.runs)
        runs[run_id] = "running"
        return m.but(streams=streams, runs=runs)
    if kind == "message.created":
        message = dict(data["message"])
        message.setdefault("run_id", run_id)
        streams = dict(m.streams)
        streams.pop(run_id, None)
        messages = m.messages
        if not any(x["id"] == message["id"] for x in messages):
            messages = _merge([x for x in messages if not x.get("pending")] + [message], messages)
        return m.but(streams=streams, messages=messages)
    if kind and kind.startswith("run."):
        status = {"run.queued": "queued", "run.started": "running", "run.waiting": "waiting_for_input",
                  "run.succeeded": "succeeded", "run.failed": "failed", "run.cancelled": "cancelled",
                  "run.interrupted": "interrupted"}.get(kind)
        if status is None:
            return m
        runs = dict(m.runs)
        runs[run_id] = status
        changes = {"runs": runs}
        if status == "failed":
            errors = dict(m.run_errors)
            errors[run_id] = data.get("message") or data.get("code") or "The run failed."
            changes["run_errors"] = errors
        if status == "waiting_for_input":
            errors = dict(m.run_errors)
            errors[run_id] = "The agent asks: " + (data.get("question") or "")
            changes["run_errors"] = errors
        return m.but(**changes)
    return m


def update(msg, model):
    if isinstance(msg, GotThreads):
        return model.but(threads=msg.threads), []
    if isinstance(msg, GotThread):
        t = msg.thread
        if t.get("id") != model.thread_id:
            return model, []
        return model.but(title=t.get("title") or "Untitled chat", loaded=True,
                         messages=_merge(t.get("messages") or [], model.messages)), []
    if isinstance(msg, LoadFailed):
        return model.but(error=msg.error.message, loaded=True, threads=model.threads or []), []
    if isinstance(msg, SetComposer):
        return model.but(composer=msg.value), []
    if isinstance(msg, SendMessage):
        content = model.composer.strip()
        if not content or model.sending or not model.thread_id:
            return model, []
        local = model.local + 1
        pending = {"id": "local-%d" % local, "seq": None, "role": "user", "content": content, "pending": True}
        return (model.but(composer="", sending=True, local=local, error=None, messages=model.messages + [pending]),
                [Http("POST", "/api/threads/%s/messages" % model.thread_id, {"content": content}, Posted, PostFailed)])
    if isinstance(msg, Posted):
        runs = dict(model.runs)
        runs.setdefault(msg.run["id"], msg.run.get("status", "queued"))
        messages = [dict(m, pending=False) if m.get("pending") else m for m in model.messages]
        return model.but(sending=False, runs=runs, messages=messages), []
    if isinstance(msg, PostFailed):
        failed = [m for m in model.messages if m.get("pending")]
        return (model.but(sending=False, error=msg.error.message,
                          composer=failed[-1]["content"] if failed else model.composer,
                          messages=[m for m in model.messages if not m.get("pending")]), [])
    if isinstance(msg, Connected):
        m = model.but(online=True, subscribed=False)
        return m, subscribe(m)
    if isinstance(msg, Disconnected):
        return model.but(online=False, subscribed=False), []
    if isinstance(msg, Live):
        return live(model, msg.data)
    return model, []


def live(model, data):
    op = data.get("op")
    if data.get("topic") not in (None, topic(model) if model.thread_id else None):
        return model, []
    if op == "subscribed":
        seq = data.get("seq") or 0
        return model.but(subscribed=True, last_seq=max(seq, model.last_seq or 0)), []
    if op == "event":
        return apply_event(model, data), []
    if op == "error":
        code = data.get("code")
        if code == "cursor_expired":
            # too far behind the log: reload the thread over REST, then follow live events
            m = model.but(last_seq=None, subscribed=False)
            return m, [Http("GET", "/api/threads/%s?limit=1000" % m.thread_id, None, GotThread, LoadFailed)] + subscribe(m)
        if code == "already_subscribed":
            return model.but(subscribed=True), []
        if code == "forbidden":
            return model.but(error="This thread does not exist or is not yours."), []
    return model, []


# ---------------------------------------------------------------- view

def _message(m):
    role = m.get("role", "assistant")
    if role == "assistant" and not m.get("content"):
        return h("li", {"class": "msg note"}, "Used a tool")
    label = {"user": "You", "assistant": "Agent", "tool": "Tool"}.get(role, role)
    return h("li", {"class": "msg " + role + (" pending" if m.get("pending") else "")}, [
        h("span", {"class": "who"}, label),
        h("div", {"class": "body"}, m.get("content", "")),
        m.get("partial") and h("span", {"class": "muted"}, " (cut short)"),
    ])


def _thread_link(t, current):
    attrs = {"href": "/chat/" + t["id"]}
    if current:
        attrs["aria-current"] = "page"
    return h("li", {}, h("a", attrs, t.get("title") or "Untitled chat"))


def transcript(model):
    items = [memo(_message, m, key=m["id"]) for m in model.messages]
    for run_id, status in model.runs.items():
        streamed = model.streams.get(run_id)
        if streamed:
            items.append(h("li", {"key": "stream-" + run_id, "class": "msg assistant streaming"}, [
                h("span", {"class": "who"}, "Agent"), h("div", {"class": "body"}, streamed)]))
        elif status in ("queued", "running"):
            items.append(h("li", {"key": "wait-" + run_id, "class": "msg note"}, "Thinking…"))
        if run_id in model.run_errors:
            items.append(h("li", {"key": "err-" + run_id, "class": "msg note alert"}, model.run_errors[run_id]))
    return h("ol", {"class": "transcript", "role": "log", "aria-live": "polite", "aria-label": "Transcript"}, items)


def view(model):
    threads = model.threads
    side = h("nav", {"class": "threads", "aria-label": "Threads"}, [
        h("h2", {}, "Threads"),
        h("p", {"class": "muted"}, "Loading…") if threads is None else (
            h("ul", {}, [memo(_thread_link, t, t["id"] == model.thread_id, key=t["id"]) for t in threads])
            if threads else h("p", {"class": "muted"}, "No threads yet.")),
        h("p", {}, h("a", {"href": "/agents"}, "Start a chat from an agent")),
    ])
    if not model.thread_id:
        main = h("div", {"class": "thread"}, [h("h1", {}, "Chat"),
                                              h("p", {"class": "muted"}, "Pick a thread, or start one from the Agents page.")])
    else:
        main = h("div", {"class": "thread"}, [
            h("h1", {"id": "thread-title"}, model.title or "Loading…"),
            model.error and h("p", {"class": "alert", "role": "alert"}, model.error),
            transcript(model),
            h("form", {"class": "composer", "onsubmit": SendMessage(), "aria-label": "Composer"}, [
                h("label", {"for": "composer"}, "Message"),
                h("textarea", {"id": "composer", "rows": "3", "value": model.composer,
                               "placeholder": "Write a message (Enter sends, Shift+Enter for a new line)",
                               "oninput": lambda ev: SetComposer(ev.target.value),
                               "onkeydown": _enter_sends}),
                h("button", {"type": "submit", "disabled": model.sending or not model.composer.strip()}, "Send"),
            ]),
        ])
    return h("div", {"class": "chat"}, [side, main])


def _enter_sends(ev):
    if ev.key == "Enter" and not ev.shiftKey and not ev.isComposing:
        ev.preventDefault()
        return SendMessage()
    return None

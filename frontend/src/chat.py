"""The chat page: your threads, one thread's transcript with replies streamed
token by token over the WebSocket, tool calls and their results, questions the
agent asks (answered inline), cancel and resume, a composer, and renaming or
deleting the thread.

Live: the open thread on `threads/{id}` (replayed from a cursor), and the thread list
on the user's `users/{id}` (thread.created, thread.renamed, thread.deleted; live only:
the list is fetched again after a reconnect)."""

from runtime import Msg, Http, Navigate, Send, Remember, Recall, h, memo, text_of, Record, key_for


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


class LoadEarlier(Msg):
    """Show the page of messages before the oldest one shown."""


class GotEarlier(Msg):
    def __init__(self, thread):
        self.thread = thread


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


class GotRuns(Msg):
    """The thread's recent runs over REST: statuses, questions and errors after a reload."""

    def __init__(self, body):
        self.body = body


class Cancel(Msg):
    def __init__(self, run_id):
        self.run_id = run_id


class Resume(Msg):
    def __init__(self, run_id):
        self.run_id = run_id


class SetAnswer(Msg):
    def __init__(self, run_id, value):
        self.run_id, self.value = run_id, value


class Answer(Msg):
    def __init__(self, run_id):
        self.run_id = run_id


class RunChanged(Msg):
    """A cancel / resume / answer was accepted: the run as the server now has it."""

    def __init__(self, run):
        self.run = run


class ActionFailed(Msg):
    def __init__(self, run_id, error):
        self.run_id, self.error = run_id, error


class EditTitle(Msg):
    """Start renaming the thread (the title to edit), or stop (None)."""

    def __init__(self, value):
        self.value = value


class SetTitle(Msg):
    def __init__(self, value):
        self.value = value


class SaveTitle(Msg):
    pass


class Renamed(Msg):
    def __init__(self, thread):
        self.thread = thread


class AskDelete(Msg):
    def __init__(self, on):
        self.on = on


class DeleteThread(Msg):
    pass


class Deleted(Msg):
    def __init__(self, thread_id):
        self.thread_id = thread_id


class ThreadActionFailed(Msg):
    def __init__(self, error):
        self.error = error


class GotReplayFrom(Msg):
    """The cursor this browser kept for the thread when it last had no run going (or None)."""

    def __init__(self, value):
        self.value = value


class Connected(Msg):
    """The live WebSocket (re)opened: (re)subscribe from the last seq seen."""


class Disconnected(Msg):
    pass


class Live(Msg):
    """A message from the WebSocket (event, subscribed, error, ...)."""

    def __init__(self, data):
        self.data = data


class KnowUser(Msg):
    """The signed-in user's id (from /api/me): the page then follows users/{id} for the list."""

    def __init__(self, user_id):
        self.user_id = user_id


ACTIVE = ("queued", "running", "waiting_for_input")
EVENT_STATUS = {"run.queued": "queued", "run.started": "running", "run.waiting": "waiting_for_input",
                "run.succeeded": "succeeded", "run.failed": "failed", "run.cancelled": "cancelled",
                "run.interrupted": "interrupted"}
LIST_EVENTS = ("thread.created", "thread.renamed", "thread.deleted")
USER_REF = "chat-users"    # the id on users/<me>'s subscribe: its replies (errors have no topic) carry it


class Model(Record):
    def __init__(self, thread_id=None, online=False):
        self.thread_id = thread_id
        self.online = online
        self.threads = None          # the list on the side; None while loading
        self.title = None
        self.messages = []           # stored messages, oldest first (dicts as in the API)
        self.loaded = False
        self.prev = None             # seq before which older messages are not loaded yet; None: none are
        self.loading_earlier = False
        self.send_idem = None        # (Idempotency-Key, thread and text) of the last send: a resend reuses it
        self.streams = {}            # run id -> text streamed so far (message.delta)
        self.runs = {}               # run id -> status
        self.run_inputs = {}         # run id -> id of the user message that started it
        self.run_errors = {}         # run id -> why it failed / was interrupted
        self.prompts = {}            # run id -> the ask_human question it waits on
        self.answers = {}            # run id -> the answer being typed
        self.busy = {}               # run id -> True while a cancel / resume / answer is on its way
        self.tools = {}              # call id -> {run_id, name, arguments, ok, output} (live tool events)
        self.composer = ""
        self.sending = False
        self.last_seq = None         # newest event seq seen on threads/<id>; None: not yet subscribed
        self.replayed = False        # the first subscribe (from replay_from) has been sent
        self.recalled = False        # replay_from has been read from the browser's storage
        self.replay_from = None      # a seq before every run still going: the first subscribe replays from it
        self.kept = None             # the idle cursor last written to storage
        self.subscribed = False
        self.user_id = None          # users/<me> is followed once known
        self.following = False       # users/<me> was asked for on the current socket
        self.was_online = online     # a Connected after this is a reconnect
        self.list_events = []        # users/<me> thread events since the list was asked for; None: not asked
        self.error = None
        self.local = 0               # counter for ids of messages not yet stored
        self.renaming = None         # the title being typed while renaming; None: not renaming
        self.confirm_delete = False  # "Delete this thread?" is showing
        self.thread_busy = False     # a rename or delete is on its way


def topic(model):
    return "threads/" + model.thread_id


def user_topic(model):
    return "users/" + model.user_id if isinstance(model.user_id, str) and model.user_id else None


def follow_user(model):
    """Subscribe to users/<me> (live only: the list itself comes over REST) once per socket."""
    if not model.online or model.following or user_topic(model) is None:
        return model, []
    return model.but(following=True), [Send({"op": "subscribe", "topic": user_topic(model), "id": USER_REF})]


def storage_key(thread_id):
    return "agentstead:replay:" + thread_id


def subscribe(model):
    """The subscribe message for this thread. The first one replays from a cursor taken while the
    thread had no run going (kept in this browser; else 0, the whole retained log), so a reply that
    was streaming before a reload comes back whole; messages the REST load also returned are
    merged by id, events by seq. Later ones resume from last_seq."""
    if not model.thread_id or not model.online or not model.recalled:
        return []
    message = {"op": "subscribe", "topic": topic(model)}
    if model.last_seq is not None:
        message["after"] = model.last_seq
    elif not model.replayed:
        message["after"] = model.replay_from if model.replay_from is not None else 0
    return [Send(message)]


def idle(model):
    """No run of the thread is going (or resumable): nothing before last_seq is needed to show it."""
    return not model.streams and not any(s in ACTIVE or s == "interrupted" for s in model.runs.values())


def keep_cursor(model):
    """Remember last_seq for the next load while the thread is idle (written only when it moved)."""
    if model.last_seq is None or model.last_seq == model.kept or not idle(model) or not model.thread_id:
        return model, []
    return model.but(kept=model.last_seq), [Remember(storage_key(model.thread_id), model.last_seq)]


PAGE = 100   # messages loaded at a time: the newest page first, earlier ones on request


def thread_request(thread_id):
    return Http("GET", "/api/threads/%s?limit=%d" % (thread_id, PAGE), None, GotThread, LoadFailed)


def earlier_request(thread_id, before):
    return Http("GET", "/api/threads/%s?limit=%d&before=%d" % (thread_id, PAGE, before), None, GotEarlier,
                LoadFailed)


def threads_request():
    return Http("GET", "/api/threads?limit=100", None, lambda d: GotThreads(d["threads"]), LoadFailed)


def init(thread_id, online):
    model = Model(thread_id, online)
    effects = [threads_request()]
    if thread_id:
        effects.append(thread_request(thread_id))
        effects.append(Http("GET", "/api/runs?limit=50&thread_id=" + thread_id, None, GotRuns, LoadFailed))
        effects.append(Recall(storage_key(thread_id), GotReplayFrom))
    return model, effects


def leave(model):
    """Effects when the page goes away: stop following the thread and the list."""
    effects = []
    if model.thread_id and model.online and model.subscribed:
        effects.append(Send({"op": "unsubscribe", "topic": topic(model)}))
    if model.online and model.following:
        effects.append(Send({"op": "unsubscribe", "topic": user_topic(model), "id": USER_REF}))
    return effects


def _seq(m):
    return m.get("seq") or 0


def _merge(stored, known):
    """Stored messages plus those we already knew (from events, or sent from here) that the page of
    stored ones lacks, in seq order (a message sent from here has a provisional seq until reload)."""
    ids = {m["id"] for m in stored}
    return sorted(stored + [m for m in known if m["id"] not in ids], key=_seq)


def next_seq(messages):
    """A provisional seq for a message sent now: after every message known, before any reply
    (replies are stored after it, so their seqs are at least two higher than the last known)."""
    return max([_seq(m) for m in messages] + [0]) + 0.5


def _with(d, key, value):
    d = dict(d)
    if value is None:
        d.pop(key, None)
    else:
        d[key] = value
    return d


def apply_event(model, event):
    """One event of threads/<id>, in seq order; events already seen are ignored."""
    seq = event.get("seq")
    if type(seq) is not int or not isinstance(event.get("data"), dict):
        return model
    if model.last_seq is not None and seq <= model.last_seq:
        return model
    kind, data = event.get("type"), event.get("data") or {}
    run_id = data.get("run_id")
    m = model.but(last_seq=seq)
    if kind == "thread.renamed" and data.get("thread_id") == m.thread_id and isinstance(data.get("title"), str):
        return m.but(title=data["title"], threads=_retitled(m.threads, m.thread_id, data["title"]))
    if not isinstance(run_id, str):
        return m                      # every other event this page shows names its run
    if kind == "message.delta":
        if not isinstance(data.get("text"), str):
            return m
        # only the stream changes: the rest of the model keeps its identity, so memo() skips the history
        m = m.but(streams=_with(m.streams, run_id, m.streams.get(run_id, "") + data["text"]))
        return m if m.runs.get(run_id) == "running" else m.but(runs=_with(m.runs, run_id, "running"))
    if kind == "message.created":
        if not isinstance(data.get("message"), dict) or not isinstance(data["message"].get("id"), str):
            return m
        message = dict(data["message"])
        message["content"] = text_of(message.get("content"))
        message.setdefault("run_id", run_id)
        messages = m.messages
        if not any(x["id"] == message["id"] for x in messages):
            messages = sorted(messages + [message], key=_seq)
        return m.but(streams=_with(m.streams, run_id, None), messages=messages)
    if kind in ("tool.call", "tool.result") and not isinstance(data.get("call_id"), str):
        return m
    if kind == "tool.call":
        args = data.get("arguments")
        call = {"run_id": run_id, "name": text_of(data.get("name")), "arguments": args if isinstance(args, dict) else {},
                "ok": None, "output": None}
        return m.but(tools=_with(m.tools, data["call_id"], call))
    if kind == "tool.result":
        call = dict(m.tools.get(data["call_id"]) or {"run_id": run_id, "name": text_of(data.get("name")),
                                                     "arguments": {}})
        call["ok"], call["output"] = data.get("ok") is True, str(data.get("output"))
        return m.but(tools=_with(m.tools, data["call_id"], call))
    status = EVENT_STATUS.get(kind)
    if status is None:
        return m
    changes = {"runs": _with(m.runs, run_id, status), "busy": _with(m.busy, run_id, None)}
    if kind == "run.queued" or (kind == "run.started" and data.get("resumed")):
        # a resumed run streams its reply again from the start: drop the interrupted attempt's text
        changes["streams"] = _with(m.streams, run_id, None)
        changes["run_errors"] = _with(m.run_errors, run_id, None)
    if status != "waiting_for_input":
        changes["prompts"] = _with(m.prompts, run_id, None)
    if status == "waiting_for_input":
        changes["prompts"] = _with(m.prompts, run_id, text_of(data.get("question")))
    elif status == "failed":
        changes["run_errors"] = _with(m.run_errors, run_id, text_of(data.get("message")) or text_of(data.get("code"))
                                      or "The run failed.")
    elif status == "interrupted":
        changes["run_errors"] = _with(m.run_errors, run_id, "The server stopped while this reply was being "
                                                             "written. Resume it to continue.")
    elif status == "cancelled":
        changes["streams"] = _with(m.streams, run_id, None)
    return m.but(**changes)


def _run_action(model, run_id, url, body=None):
    return (model.but(busy=_with(model.busy, run_id, True), error=None),
            [Http("POST", url, body, RunChanged, lambda e, r=run_id: ActionFailed(r, e))])


def update(msg, model):
    if isinstance(msg, GotThreads):
        # what users/<me> said while the request was on its way, again: the answer may
        # have been read before some of it (each event applies once, whatever the order)
        threads = msg.threads
        for kind, d in model.list_events or ():
            threads = _listed(threads, kind, d)
        return model.but(threads=threads, list_events=None), []
    if isinstance(msg, GotThread):
        t = msg.thread
        if t.get("id") != model.thread_id:
            return model, []
        # the newest page; `prev`: where the earlier ones start (a later reload keeps what is shown)
        prev = model.prev if model.loaded else t.get("prev")
        return model.but(title=t.get("title") or "Untitled chat", loaded=True, prev=prev,
                         messages=_merge(t.get("messages") or [], model.messages)), []
    if isinstance(msg, LoadEarlier):
        if model.prev is None or model.loading_earlier or not model.thread_id:
            return model, []
        return model.but(loading_earlier=True), [earlier_request(model.thread_id, model.prev)]
    if isinstance(msg, GotEarlier):
        t = msg.thread
        if t.get("id") != model.thread_id:
            return model, []
        return model.but(loading_earlier=False, prev=t.get("prev"),
                         messages=_merge(t.get("messages") or [], model.messages)), []
    if isinstance(msg, GotRuns):
        runs, inputs, errors, prompts = dict(model.runs), dict(model.run_inputs), dict(model.run_errors), dict(model.prompts)
        for r in msg.body.get("runs") or ():
            if r.get("thread_id") != model.thread_id:
                continue
            inputs.setdefault(r["id"], r.get("input_message_id"))
            if r["id"] in runs:
                continue              # events already told us more recent news
            runs[r["id"]] = r.get("status")
            if r.get("status") == "waiting_for_input":
                prompts[r["id"]] = r.get("waiting_prompt") or ""
            elif r.get("status") in ("failed", "interrupted") and r.get("error"):
                errors[r["id"]] = r["error"].get("message") or r["error"].get("code")
        return model.but(runs=runs, run_inputs=inputs, run_errors=errors, prompts=prompts), []
    if isinstance(msg, LoadFailed):
        return model.but(error=msg.error.message, loaded=True, threads=model.threads or [], list_events=None,
                         loading_earlier=False), []
    if isinstance(msg, SetComposer):
        return model.but(composer=msg.value), []
    if isinstance(msg, SendMessage):
        content = model.composer.strip()
        if not content or model.sending or not model.thread_id:
            return model, []
        local = model.local + 1
        pending = {"id": "local-%d" % local, "seq": next_seq(model.messages), "role": "user", "content": content,
                   "pending": True}
        # the same text sent again after a failure (maybe a lost answer) goes with the same key: one message
        idem = key_for(model.send_idem, (model.thread_id, content))
        return (model.but(composer="", sending=True, local=local, error=None, messages=model.messages + [pending],
                          send_idem=idem),
                [Http("POST", "/api/threads/%s/messages" % model.thread_id, {"content": content}, Posted, PostFailed,
                      key=idem[0])])
    if isinstance(msg, Posted):
        run = msg.run
        runs = dict(model.runs)
        runs.setdefault(run["id"], run.get("status", "queued"))
        input_id = run.get("input_message_id")
        messages = []
        for m in model.messages:
            if m.get("pending"):
                m = dict(m, pending=False, id=input_id or m["id"])
            messages.append(m)
        return model.but(sending=False, runs=runs, messages=messages, send_idem=None,
                         run_inputs=_with(model.run_inputs, run["id"], input_id)), []
    if isinstance(msg, PostFailed):
        failed = [m for m in model.messages if m.get("pending")]
        return (model.but(sending=False, error=msg.error.message,
                          composer=failed[-1]["content"] if failed else model.composer,
                          messages=[m for m in model.messages if not m.get("pending")]), [])
    if isinstance(msg, Cancel):
        if model.busy.get(msg.run_id):
            return model, []
        return _run_action(model, msg.run_id, "/api/runs/%s/cancel" % msg.run_id)
    if isinstance(msg, Resume):
        if model.busy.get(msg.run_id):
            return model, []
        return _run_action(model, msg.run_id, "/api/runs/%s/resume" % msg.run_id)
    if isinstance(msg, SetAnswer):
        return model.but(answers=_with(model.answers, msg.run_id, msg.value)), []
    if isinstance(msg, Answer):
        answer = (model.answers.get(msg.run_id) or "").strip()
        if not answer or model.busy.get(msg.run_id):
            return model, []
        m, fx = _run_action(model, msg.run_id, "/api/runs/%s/resume" % msg.run_id, {"answer": answer})
        return m.but(answers=_with(m.answers, msg.run_id, None)), fx
    if isinstance(msg, RunChanged):
        run = msg.run or {}
        rid = run.get("id")
        if not rid:
            return model, []
        changes = {"busy": _with(model.busy, rid, None)}
        if model.runs.get(rid) in ("waiting_for_input", "interrupted") and run.get("status") in ACTIVE:
            changes["prompts"] = _with(model.prompts, rid, None)
            changes["run_errors"] = _with(model.run_errors, rid, None)
            changes["runs"] = _with(model.runs, rid, run.get("status"))
        return model.but(**changes), []
    if isinstance(msg, ActionFailed):
        return model.but(busy=_with(model.busy, msg.run_id, None), error=msg.error.message), []
    if isinstance(msg, (EditTitle, SetTitle, SaveTitle, Renamed, AskDelete, DeleteThread, Deleted,
                        ThreadActionFailed)):
        return _thread_action(msg, model)
    if isinstance(msg, GotReplayFrom):
        try:
            seq = int(msg.value) if msg.value is not None else None
        except ValueError:
            seq = None
        m = model.but(recalled=True, replay_from=seq if seq is not None and seq >= 0 else None)
        return m.but(replayed=m.online), subscribe(m)
    if isinstance(msg, Connected):
        m = model.but(online=True, subscribed=False, following=False, was_online=True)
        fx = subscribe(m)
        m, more = follow_user(m.but(replayed=m.recalled))
        # back after a drop: threads created, renamed or deleted meanwhile come with the list
        if not model.was_online:
            return m, fx + more
        return m.but(list_events=[]), fx + more + [threads_request()]
    if isinstance(msg, Disconnected):
        return model.but(online=False, subscribed=False, following=False), []
    if isinstance(msg, KnowUser):
        if msg.user_id == model.user_id:
            return model, []
        return follow_user(model.but(user_id=msg.user_id, following=False))
    if isinstance(msg, Live):
        return live(model, msg.data)
    return model, []


def _thread_action(msg, model):
    """Renaming and deleting the open thread."""
    url = "/api/threads/%s" % model.thread_id
    if isinstance(msg, EditTitle):
        return model.but(renaming=msg.value, confirm_delete=False, error=None), []
    if isinstance(msg, SetTitle):
        return model.but(renaming=msg.value), []
    if isinstance(msg, SaveTitle):
        title = (model.renaming or "").strip()
        if not title or model.thread_busy or not model.thread_id:
            return model, []
        if title == model.title:
            return model.but(renaming=None), []
        return model.but(thread_busy=True, error=None), [Http("PATCH", url, {"title": title}, Renamed,
                                                              ThreadActionFailed)]
    if isinstance(msg, Renamed):
        t = msg.thread or {}
        threads = _retitled(model.threads, t.get("id"), t.get("title"))
        if t.get("id") != model.thread_id:
            return model.but(threads=threads), []
        return model.but(title=t.get("title") or model.title, renaming=None, thread_busy=False, threads=threads), []
    if isinstance(msg, AskDelete):
        return model.but(confirm_delete=msg.on, renaming=None, error=None), []
    if isinstance(msg, DeleteThread):
        if model.thread_busy or not model.thread_id:
            return model, []
        return (model.but(thread_busy=True, confirm_delete=False, error=None),
                [Http("DELETE", url, None, lambda _, t=model.thread_id: Deleted(t), ThreadActionFailed)])
    if isinstance(msg, Deleted):
        if msg.thread_id != model.thread_id:
            return model.but(threads=_without(model.threads, msg.thread_id)), []
        return _gone(model.but(thread_busy=False))
    return model.but(thread_busy=False, error=msg.error.message), []   # ThreadActionFailed


def _retitled(threads, thread_id, title):
    return threads and [dict(x, title=title) if x["id"] == thread_id else x for x in threads]


def _without(threads, thread_id):
    return threads and [x for x in threads if x["id"] != thread_id]


def _gone(model):
    """The open thread was deleted (here or elsewhere): off the list, its kept cursor
    forgotten, and the page goes to /chat."""
    tid = model.thread_id
    return (model.but(threads=_without(model.threads, tid)),
            [Remember(storage_key(tid), None), Navigate("/chat")])


def live(model, data):
    if _for_user(model, data):
        return _user_live(model, data)
    m, fx = _live(model, data)
    if m is model:
        return m, fx
    m, kept = keep_cursor(m)
    return m, fx + kept


def _for_user(model, data):
    """A message about users/<me>: by its topic or, for errors (they have none), the id its subscribe carried."""
    if data.get("topic") is None:
        return data.get("id") == USER_REF
    return data.get("topic") == user_topic(model)


def _user_live(model, data):
    """users/<me>: the thread list follows thread.created, .renamed and .deleted from anywhere.
    Its run.* and account events, its subscribed reply and its errors change nothing here."""
    if data.get("op") != "event" or not isinstance(data.get("data"), dict):
        return model, []
    kind, d = data.get("type"), data["data"]
    tid = d.get("thread_id")
    if not isinstance(tid, str) or not tid:
        return model, []
    if kind not in LIST_EVENTS or (kind != "thread.deleted" and not isinstance(d.get("title"), str)):
        return model, []
    m = model.but(threads=_listed(model.threads, kind, d))
    if m.list_events is not None:     # a list request is on its way: its answer may predate this
        m = m.but(list_events=m.list_events + [(kind, d)])
    if kind == "thread.renamed" and tid == model.thread_id and isinstance(d.get("title"), str):
        return m.but(title=d["title"]), []
    if kind == "thread.deleted" and tid == model.thread_id:
        return _gone(m)
    return m, []


def _listed(threads, kind, d):
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
        return _retitled(threads, tid, d["title"])
    if kind == "thread.deleted":
        return _without(threads, tid)
    return threads


def _live(model, data):
    op = data.get("op")
    if data.get("topic") not in (None, topic(model) if model.thread_id else None):
        return model, []
    if op == "subscribed":
        seq = data.get("seq") if type(data.get("seq")) is int else 0
        return model.but(subscribed=True, last_seq=max(seq, model.last_seq or 0)), []
    if op == "event":
        if data.get("type") == "thread.deleted" and (data.get("data") or {}).get("thread_id") == model.thread_id:
            return _gone(model)
        return apply_event(model, data), []
    if op == "error":
        code = data.get("code")
        if code == "cursor_expired":
            # too far behind the log: reload the thread over REST, then follow live events
            m = model.but(last_seq=None, subscribed=False, replayed=True, replay_from=None)
            return m, [thread_request(m.thread_id), Remember(storage_key(m.thread_id), None)] + subscribe(m)
        if code == "already_subscribed":
            return model.but(subscribed=True), []
        if code == "forbidden":
            return model.but(error="This thread does not exist or is not yours."), []
    return model, []


# ---------------------------------------------------------------- view

def _args(arguments):
    if not isinstance(arguments, dict):
        return str(arguments)
    return ", ".join("%s: %s" % (k, arguments[k]) for k in sorted(arguments))


def _message(m):
    role = m.get("role", "assistant")
    if role == "tool":
        return h("li", {"class": "msg tool"}, h("details", {}, [
            h("summary", {}, "Tool result"),
            h("pre", {"class": "body"}, m.get("content", ""))]))
    calls = m.get("tool_calls") or ()
    label = {"user": "You", "assistant": "Agent"}.get(role, role)
    return h("li", {"class": "msg " + role + (" pending" if m.get("pending") else "")}, [
        h("span", {"class": "who"}, label),
        m.get("content") and h("div", {"class": "body"}, m.get("content", "")),
        calls and h("ul", {"class": "calls"}, [
            h("li", {}, ["Called ", h("code", {}, c.get("name", "")), "(" + _args(c.get("args")) + ")"])
            for c in calls]),
        m.get("partial") and h("span", {"class": "muted"}, " (cut short)"),
    ])


def _thread_link(t, current):
    attrs = {"href": "/chat/" + t["id"]}
    if current:
        attrs["aria-current"] = "page"
    return h("li", {}, h("a", attrs, t.get("title") or "Untitled chat"))


def _stored_results(model):
    return {m.get("tool_call_id") for m in model.messages if m.get("role") == "tool"}


def run_block(model, run_id, stored_results):
    """What a run adds below its messages: streamed text, tools at work, a question, buttons."""
    status = model.runs.get(run_id)
    streamed = model.streams.get(run_id)
    busy = model.busy.get(run_id)
    items = []
    if streamed:
        items.append(h("li", {"key": "stream-" + run_id, "aria-busy": "true" if status == "running" else None,
                              "class": "msg assistant streaming" + (" stopped" if status == "interrupted" else "")},
                       [h("span", {"class": "who"}, "Agent"), h("div", {"class": "body"}, streamed)]))
    for call_id in sorted(model.tools):
        call = model.tools[call_id]
        if call.get("run_id") != run_id or call_id in stored_results or call.get("name") == "ask_human":
            continue
        done = call.get("output") is not None
        items.append(h("li", {"key": "tool-" + call_id, "class": "msg tool live"}, [
            h("span", {"class": "who"}, "Tool"),
            h("div", {}, [h("code", {}, call.get("name") or ""), "(" + _args(call.get("arguments")) + ") ",
                          h("span", {"class": "muted"}, ("returned" if call.get("ok") else "failed") if done
                            else "running…")]),
            done and h("pre", {"class": "body"}, call.get("output")),
        ]))
    if status in ("queued", "running"):
        items.append(h("li", {"key": "state-" + run_id, "class": "msg note run-state"}, [
            h("span", {}, "Queued…" if status == "queued" else ("Writing…" if streamed else "Thinking…")), " ",
            h("button", {"type": "button", "class": "secondary small", "disabled": busy,
                         "onclick": Cancel(run_id)}, "Cancel"),
        ]))
    elif status == "waiting_for_input":
        fid = "answer-" + run_id
        items.append(h("li", {"key": "ask-" + run_id, "class": "msg ask"}, h("form", {
            "onsubmit": Answer(run_id), "aria-label": "Answer the agent"}, [
            h("p", {"class": "question", "id": fid + "-q"}, ["The agent asks: ", h("strong", {}, model.prompts.get(run_id, ""))]),
            h("label", {"for": fid}, "Your answer"),
            h("textarea", {"id": fid, "rows": "2", "value": model.answers.get(run_id, ""),
                           "aria-describedby": fid + "-q",
                           "oninput": lambda ev, r=run_id: SetAnswer(r, ev.target.value)}),
            h("div", {"class": "row"}, [
                h("button", {"type": "submit", "disabled": busy or not (model.answers.get(run_id) or "").strip()},
                  "Answer"),
                h("button", {"type": "button", "class": "secondary", "disabled": busy, "onclick": Cancel(run_id)},
                  "Cancel run")]),
        ])))
    elif status == "interrupted":
        items.append(h("li", {"key": "state-" + run_id, "class": "msg note alert run-state"}, [
            h("span", {}, model.run_errors.get(run_id) or "This run was interrupted."), " ",
            h("button", {"type": "button", "class": "small", "disabled": busy, "onclick": Resume(run_id)},
              "Resume")]))
    elif status == "failed":
        items.append(h("li", {"key": "err-" + run_id, "class": "msg note alert"},
                       model.run_errors.get(run_id) or "The run failed."))
    elif status == "cancelled":
        items.append(h("li", {"key": "state-" + run_id, "class": "msg note"}, "Cancelled."))
    return items


def _anchors(model):
    """{message index: [run ids]}: each run's block goes after its last message (or its input)."""
    by_input = {}
    for rid, mid in model.run_inputs.items():
        if mid:
            by_input[mid] = rid
    last = {}
    for i, m in enumerate(model.messages):
        rid = m.get("run_id") if m.get("role") != "user" else by_input.get(m["id"])
        if rid:
            last[rid] = i
    out, tail = {}, []
    for rid in model.runs:
        if rid in last:
            out.setdefault(last[rid], []).append(rid)
        else:
            tail.append(rid)
    return out, tail


def _live_runs(model):
    """Runs whose block can change from one frame to the next (streaming, buttons, questions)."""
    return {rid for rid, status in model.runs.items()
            if status in ACTIVE or status == "interrupted" or rid in model.streams}


def _items(model, messages, start, anchors, stored):
    items = []
    for i, m in enumerate(messages):
        items.append(memo(_message, m, key=m["id"]))
        for rid in anchors.get(start + i, ()):
            items += run_block(model, rid, stored)
    return items


def _history(k, messages, runs, run_errors, tools, run_inputs):
    """The settled part of the transcript (messages[:k] and their finished runs): one memo, so a
    streamed token re-renders only the tail, not a long thread's 200 messages."""
    model = Model().but(messages=messages, runs=runs, run_errors=run_errors, tools=tools, run_inputs=run_inputs)
    anchors, _ = _anchors(model)
    stored = _stored_results(model) if model.tools else ()
    return h("ol", {"class": "transcript"}, _items(model, model.messages[:k], 0, anchors, stored))


def transcript(model):
    anchors, tail = _anchors(model)
    live = _live_runs(model)
    k = len(model.messages)
    for i in sorted(anchors):
        if any(rid in live for rid in anchors[i]):
            k = i
            break
    stored = _stored_results(model) if model.tools else ()
    rest = _items(model, model.messages[k:], k, anchors, stored)
    for rid in tail:
        rest += run_block(model, rid, stored)
    earlier = model.prev is not None and h("p", {"class": "earlier", "key": "earlier"}, h(
        "button", {"type": "button", "onclick": LoadEarlier(), "disabled": model.loading_earlier},
        "Loading…" if model.loading_earlier else "Show earlier messages"))
    return h("div", {"class": "transcript-log", "role": "log", "aria-live": "polite", "aria-label": "Transcript"}, [
        earlier,
        memo(_history, k, model.messages, model.runs, model.run_errors, model.tools, model.run_inputs, key="history"),
        h("ol", {"class": "transcript tail", "key": "tail"}, rest),
    ])


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
        main = h("div", {"class": "thread", "data-follow": "bottom"}, [
            _thread_head(model),
            model.error and h("p", {"class": "alert", "role": "alert"}, model.error),
            transcript(model),
            h("form", {"class": "composer", "onsubmit": SendMessage(), "aria-label": "Composer"}, [
                h("label", {"for": "composer"}, "Message"),
                h("textarea", {"id": "composer", "rows": "3", "value": model.composer,
                               "placeholder": "Write a message (Enter sends, Shift+Enter for a new line)",
                               "oninput": _composer_input,
                               "onkeydown": _enter_sends}),
                h("button", {"type": "submit", "disabled": model.sending or not model.composer.strip()}, "Send"),
            ]),
        ])
    return h("div", {"class": "chat"}, [side, main])


def _thread_head(model):
    if model.renaming is not None:
        return h("form", {"class": "thread-head", "onsubmit": SaveTitle(), "aria-label": "Rename the thread"}, [
            h("label", {"for": "thread-title-input"}, "Title"),
            h("input", {"id": "thread-title-input", "value": model.renaming, "maxlength": "200",
                        "oninput": _title_input}),
            h("button", {"type": "submit", "disabled": model.thread_busy or not model.renaming.strip()}, "Save"), " ",
            h("button", {"type": "button", "class": "secondary", "onclick": EditTitle(None)}, "Cancel"),
        ])
    title = h("h1", {"id": "thread-title"}, model.title or "Loading…")
    if not model.loaded or not model.title:
        return title
    if model.confirm_delete:
        actions = h("p", {"class": "confirm", "role": "group", "aria-label": "Delete the thread"}, [
            "Delete this thread, its messages and its runs? This cannot be undone. ",
            h("button", {"type": "button", "class": "danger", "onclick": DeleteThread()}, "Delete"), " ",
            h("button", {"type": "button", "class": "secondary", "onclick": AskDelete(False)}, "Keep")])
    else:
        actions = h("p", {"class": "thread-actions"}, [
            h("button", {"type": "button", "class": "secondary", "disabled": model.thread_busy,
                         "onclick": EditTitle(model.title)}, "Rename"), " ",
            h("button", {"type": "button", "class": "secondary", "disabled": model.thread_busy,
                         "onclick": AskDelete(True)}, "Delete…")])
    return h("div", {"class": "thread-head"}, [title, actions])


def _title_input(ev):
    return SetTitle(ev.target.value)


def _composer_input(ev):
    return SetComposer(ev.target.value)


def _enter_sends(ev):
    if ev.key == "Enter" and not ev.shiftKey and not ev.isComposing:
        ev.preventDefault()
        return SendMessage()
    return None

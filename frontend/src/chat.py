"""The chat page: your threads, one thread's transcript with replies streamed token by token
(transcript.py: tool calls, questions answered inline, cancel and resume), a composer, and
renaming or deleting the thread; the list of threads at the side (thread_list.py).

Live: the open thread on `threads/{id}`, replayed from a cursor kept in this browser (so a
reply that was streaming before a reload comes back whole), then from the last seq seen; the
thread list on `users/{id}` (thread.created, thread.renamed, thread.deleted), live only: the
list is fetched again after a reconnect."""

from runtime import (Update, Http, Navigate, Remember, Recall, KnowUser, Connected, Live, h, key_for, put)
from ui import alert, note, typed
import thread_list
import controls
import transcript
import turn_picker
import chat_keys
from transcript import Transcript, merge, next_seq

PAGE = 100   # messages loaded at a time: the newest page first, earlier ones on request


class Model(Transcript):
    def __init__(self, thread_id=None):
        Transcript.__init__(self)
        self.thread_id = thread_id
        self.threads = None          # the list on the side; None while loading
        self.title = None
        self.loaded = False
        self.prev = None             # seq before which older messages are not loaded yet; None: none are
        self.loading_earlier = False
        self.send_idem = None        # (Idempotency-Key, thread and text) of the last send: a resend reuses it
        self.composer = ""
        self.sending = False
        self.last_seq = None         # newest event seq seen on threads/<id>; None: none yet
        self.recalled = False        # replay_from has been read from the browser's storage
        self.replay_from = None      # where the first subscribe replays from; None: live only
        self.kept = None             # the idle cursor last written to storage
        self.user_id = None          # users/<me> is followed once known
        self.list_events = []        # users/<me> thread events since the list was asked for; None: not asked
        self.local = 0               # counter for ids of messages not yet stored
        self.renaming = None         # the title being typed while renaming; None: not renaming
        self.confirm_delete = False  # "Delete this thread?" is showing
        self.thread_busy = False     # a rename or delete is on its way
        self.editing = None          # controls.py: the message being edited, its new text, and the
        self.edit_text = ""          # messages to put back if a regenerate / edit is refused
        self.undo = None
        self.query = ""              # the search field (thread_list.py)
        self.found = None            # its results ({threads, messages}, for `searched`); None: no search shown
        self.searched = None         # the query `found` answers
        self.agent_id = None         # turn_picker.py: the thread's agent and model, yours, who answers next
        self.thread_model = None
        self.agents = None
        self.provider_models = None
        self.picking = False
        self.choice_agent = None
        self.choice_model = None
        self.choice_keep = False


def topic(model):
    return "threads/" + model.thread_id


def user_topic(model):
    return "users/" + model.user_id if isinstance(model.user_id, str) and model.user_id else None


def subscriptions(model):
    """threads/<id> once the kept cursor is read, from the last seq seen, else from that cursor
    (after cursor_expired: live only, the thread reloaded over REST); users/<me>, live only."""
    out = {}
    if model.thread_id and model.recalled:
        out[topic(model)] = model.last_seq if model.last_seq is not None else model.replay_from
    if user_topic(model):
        out[user_topic(model)] = None
    return out


def storage_key(thread_id):
    return "agentstead:replay:" + thread_id


def keep_cursor(model):
    """Remember last_seq for the next load while the thread is idle (written only when it moved):
    a cursor taken while a run is going would skip the start of its reply after a reload."""
    if model.last_seq is None or model.last_seq == model.kept or not transcript.idle(model) or not model.thread_id:
        return model, []
    return model.but(kept=model.last_seq), [Remember(storage_key(model.thread_id), model.last_seq)]


def thread_request(thread_id):
    return Http("GET", "/api/threads/%s?limit=%d" % (thread_id, PAGE), None, GotThread, LoadFailed)


def init(thread_id=None):
    model = Model(thread_id)
    effects = [thread_list.request(), Http("GET", "/api/agents?limit=200", None,
                                           lambda d: turn_picker.GotAgents(d.get("agents")), LoadFailed)]
    if thread_id:
        effects.append(thread_request(thread_id))
        effects.append(Http("GET", "/api/runs?limit=50&thread_id=" + thread_id, None, transcript.GotRuns,
                            LoadFailed))
        effects.append(Recall(storage_key(thread_id), GotReplayFrom))
    return model, effects


on = Update(transcript.on, thread_list.on, controls.on, turn_picker.on, chat_keys.on)
update = on.update


@on("thread")
def GotThread(model, thread):
    if thread.get("id") != model.thread_id:
        return model
    # the newest page; `prev`: where the earlier ones start (a later reload keeps what is shown)
    prev = model.prev if model.loaded else thread.get("prev")
    return turn_picker.followed(model, thread).but(title=thread.get("title") or "Untitled chat", loaded=True, prev=prev,
                                                   messages=merge(thread.get("messages") or [], model.messages))


@on()
def LoadEarlier(model):
    """Show the page of messages before the oldest one shown."""
    if model.prev is None or model.loading_earlier or not model.thread_id:
        return model
    return model.but(loading_earlier=True), [Http("GET", "/api/threads/%s?limit=%d&before=%d" % (
        model.thread_id, PAGE, model.prev), None, GotEarlier, LoadFailed)]


@on("thread")
def GotEarlier(model, thread):
    if thread.get("id") != model.thread_id:
        return model
    return model.but(loading_earlier=False, prev=thread.get("prev"),
                     messages=merge(thread.get("messages") or [], model.messages))


@on("error")
def LoadFailed(model, error):
    return model.but(error=error.message, loaded=True, threads=model.threads or [], list_events=None,
                     loading_earlier=False)


@on("value")
def GotReplayFrom(model, value):
    """The cursor this browser kept for the thread when it last had no run going (or None: 0,
    the whole retained log)."""
    try:
        seq = int(value) if value is not None else 0
    except ValueError:
        seq = 0
    return model.but(recalled=True, replay_from=max(seq, 0))


@on("value")
def SetComposer(model, value):
    return model.but(composer=value)


@on()
def SendMessage(model):
    content = model.composer.strip()
    if not content or model.sending or not model.thread_id:
        return model
    local = model.local + 1
    pending = {"id": "local-%d" % local, "seq": next_seq(model.messages), "role": "user", "content": content,
               "pending": True}
    # the same text sent again after a failure (maybe a lost answer) goes with the same key: one message
    body = dict(turn_picker.body(model), content=content)
    idem = key_for(model.send_idem, (model.thread_id, body))
    return (model.but(composer="", sending=True, local=local, error=None, messages=model.messages + [pending],
                      send_idem=idem),
            [Http("POST", "/api/threads/%s/messages" % model.thread_id, body, Posted, PostFailed,
                  key=idem[0])])


@on("run")
def Posted(model, run):
    runs = dict(model.runs)
    runs.setdefault(run["id"], run.get("status", "queued"))
    input_id = run.get("input_message_id")
    messages = [dict(m, pending=False, id=input_id or m["id"]) if m.get("pending") else m for m in model.messages]
    return turn_picker.after_turn(model.but(sending=False, runs=runs, messages=messages, send_idem=None,
                                            run_inputs=put(model.run_inputs, run["id"], input_id)), run)


@on("error")
def PostFailed(model, error):
    failed = [m for m in model.messages if m.get("pending")]
    return model.but(sending=False, error=error.message, composer=failed[-1]["content"] if failed else model.composer,
                     messages=[m for m in model.messages if not m.get("pending")])


# ---------------------------------------------------------------- renaming and deleting the thread

@on("value")
def EditTitle(model, value):
    """Start renaming the thread (the title to edit), or stop (None)."""
    return model.but(renaming=value, confirm_delete=False, error=None)


@on("value")
def SetTitle(model, value):
    return model.but(renaming=value)


@on()
def SaveTitle(model):
    title = (model.renaming or "").strip()
    if not title or model.thread_busy or not model.thread_id:
        return model
    if title == model.title:
        return model.but(renaming=None)
    return model.but(thread_busy=True, error=None), [Http("PATCH", "/api/threads/" + model.thread_id,
                                                          {"title": title}, Renamed, ThreadActionFailed)]


@on("thread")
def Renamed(model, thread):
    t = thread or {}
    threads = thread_list.retitled(model.threads, t.get("id"), t.get("title"))
    if t.get("id") != model.thread_id:
        return model.but(threads=threads)
    return model.but(title=t.get("title") or model.title, renaming=None, thread_busy=False, threads=threads)


@on("shown")
def AskDelete(model, shown):
    """Show "Delete this thread?" (True) or take it back."""
    return model.but(confirm_delete=shown, renaming=None, error=None)


@on()
def DeleteThread(model):
    if model.thread_busy or not model.thread_id:
        return model
    tid = model.thread_id
    return (model.but(thread_busy=True, confirm_delete=False, error=None),
            [Http("DELETE", "/api/threads/" + tid, None, lambda _: Deleted(tid), ThreadActionFailed)])


@on("thread_id")
def Deleted(model, thread_id):
    if thread_id != model.thread_id:
        return model.but(threads=thread_list.without(model.threads, thread_id))
    return _gone(model.but(thread_busy=False))


@on("error")
def ThreadActionFailed(model, error):
    return model.but(thread_busy=False, error=error.message)


def _gone(model):
    """The open thread was deleted (here or elsewhere): off the list, its kept cursor
    forgotten, and the page goes to /chat."""
    tid = model.thread_id
    return (model.but(threads=thread_list.without(model.threads, tid)),
            [Remember(storage_key(tid), None), Navigate("/chat")])


# ---------------------------------------------------------------- live

@on(KnowUser)
def _know_user(model, user_id):
    return model.but(user_id=user_id)


@on(Connected)
def _connected(model, again):
    # back after a drop: threads created, renamed or deleted meanwhile come with the list
    return (model.but(list_events=[]), [thread_list.request()]) if again else model


@on(Live)
def _live(model, data):
    if data.get("topic") == user_topic(model):
        return _user_live(model, data)
    if not model.thread_id or data.get("topic") != topic(model):
        return model
    m, fx = _thread_live(model, data)
    if m is model:
        return m, fx
    m, kept = keep_cursor(m)
    return m, fx + kept


def _thread_live(model, data):
    op = data.get("op")
    if op == "subscribed":
        return model.but(last_seq=max(data["seq"], model.last_seq or 0)), []
    if op == "error" and data.get("code") == "cursor_expired":
        # too far behind the log: reload the thread over REST, then follow live events
        m = model.but(last_seq=None, replay_from=None)
        return m, [thread_request(m.thread_id), Remember(storage_key(m.thread_id), None)]
    if op == "error" and data.get("code") == "forbidden":
        return model.but(error="This thread does not exist or is not yours."), []
    if op != "event":
        return model, []
    kind, d = data["type"], data["data"]
    if kind == "thread.deleted" and d.get("thread_id") == model.thread_id:
        return _gone(model)
    if model.last_seq is not None and data["seq"] <= model.last_seq:
        return model, []              # seen already (a replay overlapping live events)
    m = model.but(last_seq=data["seq"])
    if kind == "thread.renamed":
        if d.get("thread_id") == m.thread_id and isinstance(d.get("title"), str):
            m = m.but(title=d["title"], threads=thread_list.retitled(m.threads, m.thread_id, d["title"]))
        return m, []
    if kind == "thread.updated":
        return turn_picker.followed(m, d, saved=True), []
    return transcript.apply_event(m, data), []


def _user_live(model, data):
    """users/<me>: the thread list follows thread.created, .renamed and .deleted from anywhere (the
    open thread's title too), and thread.updated of the open thread (another tab or client chose who
    answers it). Its run.* and account events, its replies and errors change nothing."""
    if data.get("op") == "event" and data.get("type") == "thread.updated":
        return turn_picker.followed(model, data["data"], saved=True)
    m = thread_list.follow(model, data.get("type"), data["data"]) if data.get("op") == "event" else None
    if m is None:
        return model
    tid = data["data"]["thread_id"]
    if data["type"] == "thread.renamed" and tid == model.thread_id:
        return m.but(title=data["data"]["title"])
    if data["type"] == "thread.deleted" and tid == model.thread_id:
        return _gone(m)
    return m


# ---------------------------------------------------------------- view

def _earlier(model):
    return model.prev is not None and h("p", {"class": "earlier", "key": "earlier"}, h(
        "button", {"type": "button", "onclick": LoadEarlier(), "disabled": model.loading_earlier},
        "Loading…" if model.loading_earlier else "Show earlier messages"))


def view(model):
    if not model.thread_id:
        main = h("div", {"class": "thread"}, [h("h1", {}, "Chat"),
                                              note("Pick a thread, or start one from the Agents page.")])
    else:
        main = h("div", {"class": "thread", "data-follow": "bottom"}, [
            _thread_head(model),
            alert(model.error),
            transcript.view(model, _earlier(model)),
            controls.view(model),
            turn_picker.view(model),
            h("form", {"class": "composer", "onsubmit": SendMessage(), "aria-label": "Composer"}, [
                h("label", {"for": "composer"}, "Message"),
                h("textarea", {"id": "composer", "rows": "3", "value": model.composer,
                               "placeholder": "Write a message (Enter sends, Shift+Enter for a new line)",
                               "aria-keyshortcuts": "i",
                               "oninput": typed(SetComposer), "onkeydown": _enter_sends}),
                h("button", {"type": "submit", "disabled": model.sending or not model.composer.strip()}, "Send"),
            ]),
        ])
    return h("div", {"class": "chat"}, [thread_list.side(model), main])


def _thread_head(model):
    if model.renaming is not None:
        return h("form", {"class": "thread-head", "onsubmit": SaveTitle(), "aria-label": "Rename the thread"}, [
            h("label", {"for": "thread-title-input"}, "Title"),
            h("input", {"id": "thread-title-input", "value": model.renaming, "maxlength": "200",
                        "oninput": typed(SetTitle)}),
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


def _enter_sends(ev):
    if ev.key == "Enter" and not ev.shiftKey and not ev.isComposing:
        ev.preventDefault()
        return SendMessage()
    return None

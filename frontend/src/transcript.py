"""A chat thread's transcript: its stored messages and what the runs started in it add while
they go (text streamed token by token, tools at work, a question the agent asks, why a run
failed), from the thread's events and the runs' snapshot over REST; the actions on a run
(cancel, resume, answer a question); and the transcript's view, built so that a streamed token
re-renders only the tail of a long thread.

The chat page's model (chat.Model) is a Transcript with the page's own fields added; the page
applies each new event of threads/<id> here (apply_event) and hands the messages declared here
to `update`. A message or run control for issue 22 (copy, regenerate, edit and re-run, usage,
Markdown) goes here: a field on Transcript, a handler below, a piece of _message or run_block."""

from runtime import Update, Http, Copy, h, memo, text_of, put, Record
from ui import ACTIVE, EVENT_STATUS
import markdown
import controls
import run_usage
import turn_picker


class Transcript(Record):
    def __init__(self):
        self.thread_id = None
        self.messages = []           # stored messages, oldest first (dicts as in the API)
        self.streams = {}            # run id -> text streamed so far (message.delta)
        self.runs = {}               # run id -> status
        self.run_inputs = {}         # run id -> id of the user message that started it
        self.run_errors = {}         # run id -> why it failed / was interrupted
        self.prompts = {}            # run id -> the ask_human question it waits on
        self.answers = {}            # run id -> the answer being typed
        self.busy = {}               # run id -> True while a cancel / resume / answer is on its way
        self.tools = {}              # call id -> {run_id, name, arguments, ok, output} (live tool events)
        self.error = None            # what the last action could not do
        self.usage = {}              # run id -> its time and tokens (run_usage.py)
        self.agents = None           # yours (names of who answered: turn_picker.py)
        self.run_meta = {}           # run id -> (agent id, model) of who answers it


def _seq(m):
    return m.get("seq") or 0


def merge(stored, known):
    """Stored messages plus those we already knew (from events, or sent from here) that the page of
    stored ones lacks, in seq order (a message sent from here has a provisional seq until reload)."""
    ids = {m["id"] for m in stored}
    return sorted(stored + [m for m in known if m["id"] not in ids], key=_seq)


def next_seq(messages):
    """A provisional seq for a message sent now: after every message known, before any reply
    (replies are stored after it, so their seqs are at least two higher than the last known)."""
    return max([_seq(m) for m in messages] + [0]) + 0.5


def idle(model):
    """No run of the thread is going (or resumable): nothing before the cursor is needed to show it."""
    return not model.streams and not any(s in ACTIVE or s == "interrupted" for s in model.runs.values())


# ---------------------------------------------------------------- events of threads/<id>

def _delta(m, run_id, data, kind):
    if not isinstance(data.get("text"), str):
        return m
    # only the stream changes: the rest of the model keeps its identity, so memo() skips the history
    m = m.but(streams=put(m.streams, run_id, m.streams.get(run_id, "") + data["text"]))
    return m if m.runs.get(run_id) == "running" else m.but(runs=put(m.runs, run_id, "running"))


def _created(m, run_id, data, kind):
    if not isinstance(data.get("message"), dict) or not isinstance(data["message"].get("id"), str):
        return m
    message = dict(data["message"])
    message["content"] = text_of(message.get("content"))
    message.setdefault("run_id", run_id)
    messages = m.messages
    if not any(x["id"] == message["id"] for x in messages):
        messages = sorted(messages + [message], key=_seq)
    return m.but(streams=put(m.streams, run_id, None), messages=messages)


def _tool(m, run_id, data, kind):
    if not isinstance(data.get("call_id"), str):
        return m
    if kind == "tool.call":
        args = data.get("arguments")
        call = {"run_id": run_id, "name": text_of(data.get("name")), "arguments": args if isinstance(args, dict) else {},
                "ok": None, "output": None}
    else:
        call = dict(m.tools.get(data["call_id"]) or {"run_id": run_id, "name": text_of(data.get("name")),
                                                     "arguments": {}})
        call["ok"], call["output"] = data.get("ok") is True, str(data.get("output"))
    return m.but(tools=put(m.tools, data["call_id"], call))


def _status(m, run_id, data, kind):
    status = EVENT_STATUS[kind]
    changes = {"runs": put(m.runs, run_id, status), "busy": put(m.busy, run_id, None)}
    if kind == "run.queued" or (kind == "run.started" and data.get("resumed")):
        # a resumed run streams its reply again from the start: drop the interrupted attempt's text
        changes["streams"] = put(m.streams, run_id, None)
        changes["run_errors"] = put(m.run_errors, run_id, None)
    if status != "waiting_for_input":
        changes["prompts"] = put(m.prompts, run_id, None)
    if status == "waiting_for_input":
        changes["prompts"] = put(m.prompts, run_id, text_of(data.get("question")))
    elif status == "failed":
        changes["run_errors"] = put(m.run_errors, run_id, text_of(data.get("message")) or text_of(data.get("code"))
                                      or "The run failed.")
    elif status == "interrupted":
        changes["run_errors"] = put(m.run_errors, run_id, "The server stopped while this reply was being "
                                                             "written. Resume it to continue.")
    elif status == "cancelled":
        changes["streams"] = put(m.streams, run_id, None)
    return m.but(**changes)


EVENTS = {"message.delta": _delta, "message.created": _created, "tool.call": _tool, "tool.result": _tool,
          "messages.removed": controls.removed}
EVENTS.update({kind: _status for kind in EVENT_STATUS})


def apply_event(model, event):
    """One new event of the thread (the page has checked its seq): what it changes in the transcript."""
    data = event["data"]
    fn = EVENTS.get(event["type"])
    if fn is None or not isinstance(data.get("run_id"), str):
        return model                 # every event shown here names its run
    model = fn(model, data["run_id"], data, event["type"])
    if event["type"] in ("run.started", "run.succeeded"):
        model = model.but(usage=run_usage.on_event(model.usage, data["run_id"], event["type"], data, event.get("at")))
    return model


# ---------------------------------------------------------------- runs: snapshot and actions

on = Update()
update = on.update


@on("body")
def GotRuns(model, body):
    """The thread's recent runs over REST: statuses, questions and errors after a reload."""
    runs, inputs, errors, prompts = dict(model.runs), dict(model.run_inputs), dict(model.run_errors), dict(model.prompts)
    usage = dict(model.usage)
    for r in body.get("runs") or ():
        if r.get("thread_id") != model.thread_id:
            continue
        inputs.setdefault(r["id"], r.get("input_message_id"))
        if r["id"] in runs:
            continue              # events already told us more recent news
        runs[r["id"]] = r.get("status")
        if r.get("status") == "succeeded":
            usage[r["id"]] = run_usage.from_run(r)
        if r.get("status") == "waiting_for_input":
            prompts[r["id"]] = r.get("waiting_prompt") or ""
        elif r.get("status") in ("failed", "interrupted") and r.get("error"):
            errors[r["id"]] = r["error"].get("message") or r["error"].get("code")
    return model.but(runs=runs, run_inputs=inputs, run_errors=errors, prompts=prompts, usage=usage,
                     run_meta=turn_picker.from_runs(model.run_meta, body.get("runs") or ()))


def _act(model, run_id, path, body=None):
    """A cancel, resume or answer of one run, one at a time."""
    if model.busy.get(run_id):
        return model
    return (model.but(busy=put(model.busy, run_id, True), error=None),
            [Http("POST", "/api/runs/%s/%s" % (run_id, path), body, RunChanged, lambda e: ActionFailed(run_id, e))])


@on("run_id")
def Cancel(model, run_id):
    return _act(model, run_id, "cancel")


@on("run_id")
def Resume(model, run_id):
    return _act(model, run_id, "resume")


@on("run_id value")
def SetAnswer(model, run_id, value):
    return model.but(answers=put(model.answers, run_id, value))


@on("run_id")
def Answer(model, run_id):
    answer = (model.answers.get(run_id) or "").strip()
    if not answer or model.busy.get(run_id):
        return model
    m, fx = _act(model, run_id, "resume", {"answer": answer})
    return m.but(answers=put(m.answers, run_id, None)), fx


@on("run")
def RunChanged(model, run):
    """A cancel / resume / answer was accepted: the run as the server now has it."""
    rid = (run or {}).get("id")
    if not rid:
        return model
    changes = {"busy": put(model.busy, rid, None)}
    if model.runs.get(rid) in ("waiting_for_input", "interrupted") and run.get("status") in ACTIVE:
        changes["prompts"] = put(model.prompts, rid, None)
        changes["run_errors"] = put(model.run_errors, rid, None)
        changes["runs"] = put(model.runs, rid, run.get("status"))
    return model.but(**changes)


@on("run_id error")
def ActionFailed(model, run_id, error):
    return model.but(busy=put(model.busy, run_id, None), error=error.message)


@on("text")
def CopyText(model, text):
    """A message's or a code block's Copy button: the text to the clipboard."""
    return model, [Copy(text)]


# ---------------------------------------------------------------- view

def _args(arguments):
    if not isinstance(arguments, dict):
        return str(arguments)
    return ", ".join("%s: %s" % (k, arguments[k]) for k in sorted(arguments))


def _message(m, rendered=0, who="Agent"):
    """One stored message; `rendered`: markdown.state() (a memo argument, so messages drawn as
    plain text before the parser loaded, or before the image origins were known, are drawn again)."""
    role = m.get("role", "assistant")
    if role == "tool":
        return h("li", {"class": "msg tool"}, h("details", {}, [
            h("summary", {}, "Tool result"),
            h("pre", {"class": "body"}, m.get("content", ""))]))
    calls = m.get("tool_calls") or ()
    label = {"user": "You", "assistant": who}.get(role, role)
    content = m.get("content")
    return h("li", {"class": "msg " + role + (" pending" if m.get("pending") else "")}, [
        h("span", {"class": "who"}, label),
        content and (markdown.view(content, CopyText) if role == "assistant" else h("div", {"class": "body"}, content)),
        content and h("div", {"class": "msg-actions"}, [
            h("button", {"type": "button", "class": "secondary small", "aria-label": "Copy message",
                         "onclick": CopyText(content)}, "Copy"),
            role == "user" and not m.get("pending") and controls.edit_button(m)]),
        calls and h("ul", {"class": "calls"}, [
            h("li", {}, ["Called ", h("code", {}, c.get("name", "")), "(" + _args(c.get("args")) + ")"])
            for c in calls]),
        m.get("partial") and h("span", {"class": "muted"}, " (cut short)"),
    ])


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
                       [h("span", {"class": "who"}, turn_picker.answered_by(model, {"run_id": run_id})),
                        markdown.streaming(streamed, CopyText)]))
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
    elif status == "succeeded" and run_usage.line(model.usage.get(run_id)):
        items.append(h("li", {"key": "usage-" + run_id, "class": "msg note usage"},
                       run_usage.line(model.usage.get(run_id))))
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
    ready = markdown.state()
    for i, m in enumerate(messages):
        items.append(memo(_message, m, ready, turn_picker.answered_by(model, m) if m.get("role") == "assistant"
                          else "", key=m["id"]))
        for rid in anchors.get(start + i, ()):
            items += run_block(model, rid, stored)
    return items


def _history(k, messages, runs, run_errors, tools, run_inputs, usage, ready=0, agents=None, run_meta=None):
    """The settled part of the transcript (messages[:k] and their finished runs): one memo, so a
    streamed token re-renders only the tail, not a long thread's 200 messages."""
    model = Transcript().but(messages=messages, runs=runs, run_errors=run_errors, tools=tools, run_inputs=run_inputs,
                             usage=usage, agents=agents, run_meta=run_meta or {})
    anchors, _ = _anchors(model)
    stored = _stored_results(model) if model.tools else ()
    return h("ol", {"class": "transcript"}, _items(model, model.messages[:k], 0, anchors, stored))


def view(model, earlier=None):
    """The transcript: `earlier` (a way to older messages), the settled history (one memo), the live tail."""
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
    return h("div", {"class": "transcript-log", "role": "log", "aria-live": "polite", "aria-label": "Transcript"}, [
        earlier,
        memo(_history, k, model.messages, model.runs, model.run_errors, model.tools, model.run_inputs, model.usage,
             markdown.state(), model.agents, model.run_meta, key="history"),
        h("ol", {"class": "transcript tail", "key": "tail"}, rest),
    ])

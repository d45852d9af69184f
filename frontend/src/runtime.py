"""What a page is built from (after hyperapp and the Elm architecture); see frontend/README.md.

All pure, tested under CPython and MicroPython: messages and effects as data (`Data`), a page's
update as a dispatch table (`Update`), the messages the app hands to every page (`Live`,
`Connected`, ...), the topics a WebSocket follows kept in step with the ones the page wants
(`Topics`), and, re-exported from vdom.py, virtual nodes (h, text, memo) and their diff.
program.py runs it all in a browser: the dispatch loop, effects and subscriptions.
"""

try:
    import js
except ImportError:  # CPython (unit tests)
    js = None

import json

from vdom import VNode, h, text, memo, diff, rendered, Applier   # noqa: F401 (pages import them from here)


# ---------------------------------------------------------------- data: messages, effects, models

class Data:
    """A value with named fields (its class's `fields`), equal to another of its class with equal
    fields. Arguments fill the fields in order or by name; those not given are None."""
    fields = ()

    def __init__(self, *args, **named):
        fields = self.fields
        if len(args) > len(fields):
            raise TypeError("%s takes %d arguments, not %d" % (type(self).__name__, len(fields), len(args)))
        for i, name in enumerate(fields):
            setattr(self, name, args[i] if i < len(args) else named.pop(name, None))
        if named:
            raise TypeError("%s has no field %s" % (type(self).__name__, ", ".join(named)))

    def __eq__(self, other):
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return type(self).__name__ + repr(tuple(getattr(self, f) for f in self.fields))


class Msg(Data):
    """Base of every message."""


class Effect(Data):
    """Base of every effect: data that update returns and program.py executes."""


def message(name, fields=""):
    """A message class: message("GotRun", "run")(x).run is x."""
    return type(name, (Msg,), {"fields": tuple(fields.split())})


class Update:
    """A page's update(msg, model) as a dispatch table, message class -> handler(model, *fields);
    a handler returns the new model, or (model, effects).

        on = Update()
        update = on.update

        @on("run")              # declares the message GotRun(run), handled here
        def GotRun(model, run):
            return model.but(run=run)

        @on(Live)               # handles a message declared elsewhere (here: the runtime's)
        def _live(model, data): ...

    Update(part, ...) starts with the handlers of other tables (a part of the page kept in a
    module of its own, on the same model). A message the table does not know goes to
    otherwise(msg, model) when given, else changes nothing (e.g. a late reply for a page no
    longer shown)."""

    def __init__(self, *parts, otherwise=None):
        self.table = {}
        for part in parts:
            self.table.update(part.table)
        self.otherwise = otherwise

    def __call__(self, spec=""):
        def declare(fn):
            if isinstance(spec, str):
                cls = message(fn.__name__, spec)
                self.table[cls] = fn
                return cls
            self.table[spec] = fn
            return fn
        return declare

    def update(self, msg, model):
        fn = self.table.get(type(msg))
        if fn is None:
            return self.otherwise(msg, model) if self.otherwise is not None else (model, [])
        out = fn(model, *[getattr(msg, f) for f in msg.fields])
        return out if type(out) is tuple else (out, [])


class Record:
    """A page's model: immutable by convention; `but(**changes)` is a changed copy.
    (Subclasses need an __init__ whose arguments all have defaults.)"""

    def but(self, **changes):
        m = type(self)()
        for k, v in self.__dict__.items():
            setattr(m, k, v)
        for k, v in changes.items():
            setattr(m, k, v)
        return m


def put(d, key, value):
    """A copy of dict d with key set to value (None: without key); models hold dicts as values."""
    d = dict(d)
    if value is None:
        d.pop(key, None)
    else:
        d[key] = value
    return d


# What the app hands to the page shown; a page handles those it needs with @on(...).
Live = message("Live", "data")              # a WebSocket message (see live_message) on a topic it wants
Connected = message("Connected", "again")   # the socket is open; again: not the first time (live-only
#                                             topics may have missed events while it was closed)
Disconnected = message("Disconnected")      # the socket closed; it reconnects by itself
KnowUser = message("KnowUser", "user_id")   # who is signed in (/api/me answered)
SessionEnded = message("SessionEnded")      # the session is over: the app forgets the user
CodeLoaded = message("CodeLoaded")          # the modules built apart (LoadCode) are in: the app may show their page


# ---------------------------------------------------------------- effects

class Http(Effect):
    """A JSON request. on_ok(body) and on_err(ApiError) return the message to dispatch.
    `key`: the Idempotency-Key of a creating POST (one per user action, see new_key); such a
    request is sent again with the same key when the server was unreachable or busy (network
    error, 502, 503, 504), up to RETRIES times, before on_err hears of it."""
    fields = ("method", "url", "body", "on_ok", "on_err", "key")


class Navigate(Effect):
    """Go to a path inside the SPA (History API); replace=True keeps no history entry."""
    fields = ("path", "replace")


class Delay(Effect):
    """Dispatch msg after ms milliseconds."""
    fields = ("ms", "msg")


class Remember(Effect):
    """Keep a small string in the browser (localStorage) under key; value None forgets it."""
    fields = ("key", "value")


class Copy(Effect):
    """Put text on the clipboard (a code block's or a message's Copy button)."""
    fields = ("text",)


class LoadCode(Effect):
    """Fetch the modules built apart from the first load (build.py LAZY: the workflows page and
    its drawing, the account and admin pages); CodeLoaded follows once they can be imported."""
    fields = ()


class Focus(Effect):
    """After the next render, move focus to the element with this id; keep=True first notes
    the element focused now, and an id of None moves focus back to it (a dialog closing)."""
    fields = ("element_id", "keep")


class Recall(Effect):
    """Dispatch to_msg(the string kept under key, or None)."""
    fields = ("key", "to_msg")


RETRIES = 3
RETRY_STATUSES = (0, 502, 503, 504)   # 0: the server could not be reached


def new_key():
    """A fresh Idempotency-Key for one user action: sent with its POST and with every retry of
    it, so the server makes the thing once however often the request arrives."""
    if js is not None:
        try:
            return str(js.crypto.randomUUID())
        except Exception:   # randomUUID needs a secure context; plain http on a LAN address has none
            words = js.crypto.getRandomValues(js.Uint32Array.new(4))
            return "-".join("%08x" % words[i] for i in range(4))
    import random
    return "-".join("%08x" % random.getrandbits(32) for _ in range(4))


def key_for(previous, body):
    """(key, body) for submitting `body`: the previous key again when the same body is sent again
    (a retry of an action whose answer was lost or failed), else a new one."""
    if previous is not None and previous[1] == body:
        return previous
    return (new_key(), body)


class ApiError:
    """What an Http effect's on_err receives: the API's {"error": {...}} as fields."""

    def __init__(self, status, code, message, details=None, body=None):
        self.status, self.code, self.message, self.details = status, code, message, details or {}
        self.body = body          # the whole parsed body (e.g. /readyz answers 503 with its checks)

    @staticmethod
    def of(status, data):
        """The error of a non-2xx answer whose body (parsed) is data."""
        err = (data or {}).get("error") if isinstance(data, dict) else None
        return ApiError(status, (err or {}).get("code") or "http_%d" % status,
                        (err or {}).get("message") or "The request failed (%d)." % status, (err or {}).get("details"),
                        data)

    def field_errors(self):
        """{json pointer: message} from error.details.errors (validation_failed)."""
        out = {}
        for e in self.details.get("errors") or ():
            out.setdefault(e.get("pointer") or "", e.get("message") or "is invalid")
        return out

    def __eq__(self, other):
        return isinstance(other, ApiError) and self.__dict__ == other.__dict__

    def __repr__(self):
        return "ApiError(%r, %r)" % (self.status, self.code)


def reply_message(fx, status, data):
    """The message for a 2xx answer: on_ok(body), or on_err(ApiError) when the body is not what
    on_ok expects (e.g. a proxy's HTML page, or a field missing): the page shows an error
    instead of the update failing."""
    try:
        return fx.on_ok(data)
    except Exception:
        err = ApiError(status, "bad_response", "The server's answer could not be read. Please try again.")
        return fx.on_err(err) if fx.on_err is not None else None


def failed_messages(fx, err, unauthorized):
    """The messages a request's final failure leads to: `unauthorized` (the app's message, which
    shows the sign-in page) when the server said 401, but for /auth/providers (the sign-in page
    asks it signed out); then fx.on_err(err). program.py dispatches them; the app's server, which
    draws a page's first view with this code (src/agentstead/first_page), feeds them to update."""
    msgs = [unauthorized()] if err.status == 401 and fx.url != "/auth/providers" else []
    return msgs + ([fx.on_err(err)] if fx.on_err is not None else [])


def json_or_none(s):
    """The JSON value of an answer's body, or None (empty, or not JSON: a proxy's HTML page)."""
    try:
        return json.loads(s) if s else None
    except ValueError:
        return None


def backoff_ms(attempt, base=500, cap=15000):
    """Reconnect and retry delay: doubling from base, capped; attempt 0 is the first retry."""
    return min(cap, base * (2 ** min(attempt, 16)))


# ---------------------------------------------------------------- subscriptions

class Socket:
    """Keep a WebSocket to url open (reconnecting with backoff) while subscribed, following
    `topics` ({topic: cursor}, kept in step by Topics). on_open() / on_close(code) /
    on_message(dict) return messages."""

    def __init__(self, url, on_open, on_close, on_message, topics=None):
        self.key = "ws:" + url
        self.url, self.on_open, self.on_close, self.on_message = url, on_open, on_close, on_message
        self.topics = topics or {}


class Every:
    """Dispatch to_msg(now_ms) every ms milliseconds while subscribed (clocks for durations)."""

    def __init__(self, ms, to_msg):
        self.key = "every:%d" % ms
        self.ms, self.to_msg = ms, to_msg


class Topics:
    """The topics one WebSocket follows, kept in step with those wanted ({topic: cursor}).

    sync(wanted) gives the messages to send: subscribe to a topic newly wanted (after its cursor,
    or live only for None), unsubscribe from one no longer wanted. A cursor is read only when its
    topic is subscribed: it says where to resume after a reconnect, when reset() has forgotten
    the closed socket's topics and the next sync subscribes to each again from its cursor then.
    Every request carries an id. receive(data) reads the server's replies: an error (it names no
    topic) gets its request's topic, so pages tell replies apart by topic; a refused subscribe
    (forbidden, cursor_expired, ...) is not followed, and is not asked again from the same cursor
    on this socket (a page that keeps wanting a forbidden topic does not loop)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.following = {}      # topic -> id of its subscribe (sent, not refused)
        self.requests = {}       # id -> (op, topic, cursor), until the server answers
        self.refused = set()     # (topic, cursor) refused on this socket
        self.next_id = 1

    def _request(self, op, topic, cursor=None):
        ref = self.next_id
        self.next_id += 1
        self.requests[ref] = (op, topic, cursor)
        message = {"op": op, "topic": topic, "id": ref}
        if cursor is not None:
            message["after"] = cursor
        return message

    def sync(self, wanted):
        out = []
        for topic in list(self.following):
            if topic not in wanted:
                del self.following[topic]
                out.append(self._request("unsubscribe", topic))
        for topic, cursor in wanted.items():
            if topic in self.following or (topic, cursor) in self.refused:
                continue
            out.append(self._request("subscribe", topic, cursor))
            self.following[topic] = self.next_id - 1
        return out

    def receive(self, data):
        """data, with the topic of the request it answers; a refused subscribe is noted."""
        ref = data.get("id") if isinstance(data, dict) and data.get("op") in ("subscribed", "unsubscribed",
                                                                              "error") else None
        if type(ref) is not int or ref not in self.requests:
            return data
        op, topic, cursor = self.requests.pop(ref)
        if data["op"] == "error" and op == "subscribe" and data.get("code") != "already_subscribed" \
                and self.following.get(topic) == ref:
            del self.following[topic]
            self.refused.add((topic, cursor))
        return data if data.get("topic") is not None else dict(data, topic=topic)


def live_message(data):
    """A socket message in the shape asyncapi.yaml promises (op, topic, an int seq, a dict data),
    or None: the app ignores anything else rather than let a page's update trip over it."""
    if not isinstance(data, dict) or not isinstance(data.get("op"), str):
        return None
    if data.get("topic") is not None and not isinstance(data.get("topic"), str):
        return None
    op = data["op"]
    if op in ("event", "subscribed"):
        seq = data.get("seq")
        if type(seq) is not int or seq < 0:
            return None
    if op == "event" and (not isinstance(data.get("type"), str) or not isinstance(data.get("data"), dict)):
        return None
    if op == "error" and not isinstance(data.get("code"), str):
        return None
    return data


def text_of(value):
    """value if it is a string, else '' (event fields shown as text)."""
    return value if isinstance(value, str) else ""

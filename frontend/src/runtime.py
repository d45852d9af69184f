"""The SPA's tiny runtime (after hyperapp and the Elm architecture).

Pure parts, tested under CPython: virtual nodes (h, text, memo), the keyed
diff that turns two trees into a list of patch operations, messages and
effects as data. Browser parts (only touched in a browser): the applier that
runs patch operations against a DOM, the dispatch loop that renders once per
animation frame, effects (Http, Navigate, Send, Delay) and subscriptions
(the WebSocket) executed on behalf of `update`.
"""

try:
    import js
    import jsffi
except ImportError:  # CPython (unit tests): only the pure parts are used
    js = jsffi = None

import json


# ---------------------------------------------------------------- messages

class Msg:
    """Base of every message: equal when of the same class with equal fields."""

    def __init__(self, *args):
        self.args = args

    def __eq__(self, other):
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __repr__(self):
        return type(self).__name__ + repr(tuple(self.__dict__.values()))


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


class SessionEnded(Msg):
    """The session is over (log out, log out everywhere): the app forgets the user."""

    def __init__(self, _=None):
        pass


# ---------------------------------------------------------------- effects

class Effect:
    def __eq__(self, other):
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __repr__(self):
        return type(self).__name__ + repr(self.__dict__)


class Http(Effect):
    """A JSON request. on_ok(body) and on_err(ApiError) return the message to dispatch.
    `key`: the Idempotency-Key of a creating POST (one per user action, see new_key); such a
    request is sent again with the same key when the server was unreachable or busy (network
    error, 502, 503, 504), up to RETRIES times, before on_err hears of it."""

    def __init__(self, method, url, body=None, on_ok=None, on_err=None, key=None):
        self.method, self.url, self.body, self.on_ok, self.on_err = method, url, body, on_ok, on_err
        self.key = key


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


class Navigate(Effect):
    """Go to a path inside the SPA (History API); replace=True keeps no history entry."""

    def __init__(self, path, replace=False):
        self.path, self.replace = path, replace


class Send(Effect):
    """Send one message (a dict) on the live WebSocket; dropped while it is closed."""

    def __init__(self, message):
        self.message = message


class Delay(Effect):
    """Dispatch msg after ms milliseconds."""

    def __init__(self, ms, msg):
        self.ms, self.msg = ms, msg


class Remember(Effect):
    """Keep a small string in the browser (localStorage) under key; value None forgets it."""

    def __init__(self, key, value):
        self.key, self.value = key, value


class Recall(Effect):
    """Dispatch to_msg(the string kept under key, or None)."""

    def __init__(self, key, to_msg):
        self.key, self.to_msg = key, to_msg


class ApiError:
    """What an Http effect's on_err receives: the API's {"error": {...}} as fields."""

    def __init__(self, status, code, message, details=None, body=None):
        self.status, self.code, self.message, self.details = status, code, message, details or {}
        self.body = body          # the whole parsed body (e.g. /readyz answers 503 with its checks)

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


# ---------------------------------------------------------------- subscriptions

class Socket:
    """Keep a WebSocket to url open (reconnecting with backoff) while subscribed.

    on_open() / on_close(code) / on_message(dict) return messages."""

    def __init__(self, url, on_open, on_close, on_message):
        self.key = "ws:" + url
        self.url, self.on_open, self.on_close, self.on_message = url, on_open, on_close, on_message


class Every:
    """Dispatch to_msg(now_ms) every ms milliseconds while subscribed (clocks for durations)."""

    def __init__(self, ms, to_msg):
        self.key = "every:%d" % ms
        self.ms, self.to_msg = ms, to_msg


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


def reply_message(fx, status, data):
    """The message for a 2xx answer: on_ok(body), or on_err(ApiError) when the body is not what
    on_ok expects (e.g. a proxy's HTML page, or a field missing): the page shows an error
    instead of the update failing."""
    try:
        return fx.on_ok(data)
    except Exception:
        err = ApiError(status, "bad_response", "The server's answer could not be read. Please try again.")
        return fx.on_err(err) if fx.on_err is not None else None


def backoff_ms(attempt, base=500, cap=15000):
    """Reconnect delay: doubling from base, capped; attempt 0 is the first retry."""
    return min(cap, base * (2 ** min(attempt, 16)))


# ---------------------------------------------------------------- virtual nodes

class VNode:
    __slots__ = ("tag", "attrs", "children", "key", "text", "el")

    def __init__(self, tag, attrs, children, key=None, text=None):
        self.tag, self.attrs, self.children, self.key, self.text = tag, attrs, children, key, text
        self.el = None

    def __repr__(self):
        if self.tag is None:
            return "text(%r)" % self.text
        return "h(%r, %r, %r)" % (self.tag, self.attrs, self.children)


class Lazy:
    """memo(): a subtree rendered by fn(*args), reused while args are unchanged."""
    __slots__ = ("fn", "args", "node", "key")

    def __init__(self, fn, args, key=None):
        self.fn, self.args, self.node, self.key = fn, args, None, key


def text(s):
    return VNode(None, None, None, text=str(s))


def _flatten(children, out):
    for c in children:
        if c is None or c is False or c is True:
            continue
        if isinstance(c, (list, tuple)):
            _flatten(c, out)
        elif isinstance(c, (VNode, Lazy)):
            out.append(c)
        else:
            out.append(text(c))
    return out


def h(tag, attrs=None, children=None):
    """An element; attrs may hold key (for keyed lists) and on<event> handlers."""
    attrs = dict(attrs) if attrs else {}
    key = attrs.pop("key", None)
    if children is None:
        kids = []
    elif isinstance(children, (list, tuple)):
        kids = _flatten(children, [])
    else:
        kids = _flatten([children], [])
    return VNode(tag, attrs, kids, key)


def memo(fn, *args, key=None):
    return Lazy(fn, args, key)


def _same_args(a, b):
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x is not y and not (type(x) in (str, int, float, bool) and x == y):
            return False
    return True


def _resolve(node, old=None):
    """A VNode for node; a Lazy reuses old's rendering when its args are unchanged."""
    if not isinstance(node, Lazy):
        return node
    if isinstance(old, Lazy) and old.fn is node.fn and _same_args(old.args, node.args):
        node.node = old.node
    else:
        node.node = _resolve(node.fn(*node.args))
    return node.node


def _key(node):
    return node.key


# ---------------------------------------------------------------- diff (pure)
# Operations (tuples), applied in order:
#   ("create", parent, vnode, before)   build vnode's DOM and insert it before `before` (None: append)
#   ("move", parent, vnode, before)     move an existing node
#   ("remove", parent, vnode)
#   ("replace", old, new)               a different tag: build new, swap it in
#   ("attr", vnode, name, value)        value None or False removes the attribute
#   ("event", vnode, name, handler)     handler None removes it
#   ("text", vnode, string)
# parent / before / vnode are virtual nodes; the applier reads their .el.

def diff(old, new, ops=None, parent=None):
    """Append to ops what turns old (already rendered) into new; returns ops."""
    if ops is None:
        ops = []
    if old is new:
        return ops
    old_node = old.node if isinstance(old, Lazy) else old
    if isinstance(new, Lazy):
        if isinstance(old, Lazy) and old.fn is new.fn and _same_args(old.args, new.args):
            new.node = old.node
            return ops
        new_node = _resolve(new)
    else:
        new_node = new
    if old_node is new_node:
        return ops
    if old_node.tag != new_node.tag or (old_node.tag is None) != (new_node.tag is None):
        ops.append(("replace", old_node, new_node))
        return ops
    new_node.el = old_node.el
    if new_node.tag is None:
        if old_node.text != new_node.text:
            ops.append(("text", new_node, new_node.text))
        return ops
    _diff_attrs(old_node, new_node, ops)
    _diff_children(old_node, new_node, ops)
    return ops


def _diff_attrs(old, new, ops):
    oa, na = old.attrs, new.attrs
    for name in oa:
        if name not in na:
            ops.append(("event" if name.startswith("on") else "attr", new, name, None))
    for name, value in na.items():
        if name.startswith("on"):
            if oa.get(name) != value or oa.get(name) is None:
                ops.append(("event", new, name, value))
        elif name == "value" or oa.get(name) != value:
            # value is re-checked against the live element: the person may have typed
            ops.append(("attr", new, name, value))


def _lis(seq):
    """Indexes (into seq) of a longest increasing subsequence of the non-negative entries."""
    tails, prev = [], [-1] * len(seq)
    for i, v in enumerate(seq):
        if v < 0:
            continue
        lo, hi = 0, len(tails)
        while lo < hi:
            mid = (lo + hi) // 2
            if seq[tails[mid]] < v:
                lo = mid + 1
            else:
                hi = mid
        if lo > 0:
            prev[i] = tails[lo - 1]
        if lo == len(tails):
            tails.append(i)
        else:
            tails[lo] = i
    out, i = set(), tails[-1] if tails else -1
    while i >= 0:
        out.add(i)
        i = prev[i]
    return out


def _diff_children(old, new, ops):
    olds, news = old.children, new.children
    # match new children to old ones: by key, else by position among unkeyed of the same tag
    by_key, unkeyed = {}, []
    for i, c in enumerate(olds):
        k = _key(c)
        if k is not None:
            by_key[k] = i
        else:
            unkeyed.append(i)
    used = [False] * len(olds)
    source = []          # per new child: index of its old child, or -1
    u = 0
    for c in news:
        k = _key(c)
        j = -1
        if k is not None:
            j = by_key.get(k, -1)
        elif u < len(unkeyed):
            j = unkeyed[u]
            u += 1
        if j >= 0 and not used[j]:
            used[j] = True
        else:
            j = -1
        source.append(j)
    for j, c in enumerate(olds):
        if not used[j]:
            ops.append(("remove", old, _node(c)))
    stay = _lis(source)
    before = None
    for i in range(len(news) - 1, -1, -1):
        c, j = news[i], source[i]
        if j < 0:
            node = _resolve(c)
            ops.append(("create", new, node, before))
        else:
            diff(olds[j], c, ops, new)
            node = _node(c)
            if i not in stay:
                ops.append(("move", new, node, before))
        before = node


def _node(n):
    return n.node if isinstance(n, Lazy) else n


def _ensure(n):
    """The VNode of n, rendering a Lazy that has not been rendered yet."""
    if isinstance(n, Lazy):
        return n.node if n.node is not None else _resolve(n)
    return n


# ---------------------------------------------------------------- applier (touches a DOM)

PROPS = ("value", "checked", "selected")
SVG_NS = "http://www.w3.org/2000/svg"


class Applier:
    """Runs diff operations on a DOM `document`; handlers live in a Python table,
    one delegated listener per event type on the root (dispatch(handler, event))."""

    def __init__(self, document, root, on_event):
        self.doc, self.root, self.on_event = document, root, on_event
        self.handlers = {}        # element id -> {event type: handler}
        self.listening = set()
        self.next_id = 1

    def build(self, node, svg=False):
        if node.tag is None:
            node.el = self.doc.createTextNode(node.text)
            return node.el
        svg = svg or node.tag == "svg"   # SVG elements need their namespace to render
        el = node.el = self.doc.createElementNS(SVG_NS, node.tag) if svg else self.doc.createElement(node.tag)
        for name, value in node.attrs.items():
            if name.startswith("on"):
                self.set_event(node, name, value)
            else:
                self.set_attr(el, name, value, svg)
        for c in node.children:
            el.appendChild(self.build(_ensure(c), svg))
        return el

    def _in_svg(self, parent_el):
        return parent_el is not None and getattr(parent_el, "namespaceURI", None) == SVG_NS

    def set_attr(self, el, name, value, svg=False):
        if name in PROPS and not svg:
            if name == "value":
                value = "" if value is None else str(value)
            if getattr(el, name) != value:
                setattr(el, name, value)
        elif value is None or value is False:
            el.removeAttribute(name)
        else:
            el.setAttribute(name, "" if value is True else str(value))

    def set_event(self, node, name, handler):
        el = node.el
        eid = getattr(el, "asid", None)
        if not eid:
            if handler is None:
                return
            eid = self.next_id
            self.next_id += 1
            el.asid = eid
        table = self.handlers.setdefault(eid, {})
        etype = name[2:]
        if handler is None:
            table.pop(etype, None)
            return
        table[etype] = handler
        if etype not in self.listening:
            self.listening.add(etype)
            self.root.addEventListener(etype, jsffi.create_proxy(self._fire) if jsffi else self._fire)

    def _fire(self, event):
        el = event.target
        while el is not None:
            eid = getattr(el, "asid", None)
            if eid:
                handler = self.handlers.get(eid, {}).get(event.type)
                if handler is not None:
                    self.on_event(handler, event)
                    return
            el = el.parentNode

    def forget(self, node):
        """Drop the handlers of a removed subtree."""
        if node is None or node.tag is None:
            return
        eid = getattr(node.el, "asid", None) if node.el is not None else None
        if eid:
            self.handlers.pop(eid, None)
        for c in node.children:
            self.forget(_node(c))

    def apply(self, ops):
        for op in ops:
            kind = op[0]
            if kind == "attr":
                self.set_attr(op[1].el, op[2], op[3])
            elif kind == "event":
                self.set_event(op[1], op[2], op[3])
            elif kind == "text":
                op[1].el.nodeValue = op[2]
            elif kind == "create":
                op[1].el.insertBefore(self.build(op[2], self._in_svg(op[1].el)),
                                      op[3].el if op[3] is not None else None)
            elif kind == "move":
                op[1].el.insertBefore(op[2].el, op[3].el if op[3] is not None else None)
            elif kind == "remove":
                self.forget(op[2])
                op[1].el.removeChild(op[2].el)
            elif kind == "replace":
                old, new = op[1], op[2]
                parent = old.el.parentNode
                self.forget(old)
                parent.replaceChild(self.build(new, self._in_svg(parent)), old.el)


# ---------------------------------------------------------------- the program (browser only)

def _json(s):
    try:
        return json.loads(s) if s else None
    except ValueError:
        return None


class Program:
    """init(url) -> (model, effects); update(msg, model) -> (model, effects);
    view(model) -> vnode; subscriptions(model) -> [Socket]; on_url(url) -> msg;
    on_unauthorized() -> msg (a 401 the runtime could not fix by refreshing)."""

    def __init__(self, init, update, view, subscriptions, on_url, on_unauthorized, root):
        self.update_fn, self.view_fn, self.subs_fn = update, view, subscriptions
        self.on_url, self.on_unauthorized = on_url, on_unauthorized
        self.root = root
        self.applier = Applier(js.document, root, self._on_event)
        self.vroot = None
        self.frame_pending = False
        self.csrf = None
        self.refreshing = None
        self.sockets = {}         # key -> live socket state
        self.first_render = True
        self.focus_main = False   # after an in-app navigation, focus moves to <main> (screen readers follow)
        self.timings = getattr(js, "agentsteadRenders", None)   # a benchmark's array of render ms, or None
        self._frame = jsffi.create_proxy(self._render)
        js.window.addEventListener("popstate", jsffi.create_proxy(lambda e: self.dispatch(self.on_url(_here()))))
        js.document.addEventListener("click", jsffi.create_proxy(self._on_link))
        model, effects = init(_here())
        self.model = model
        self._after(effects)

    # dispatch loop: update now, render once on the next animation frame
    def dispatch(self, msg):
        if msg is None:
            return
        try:
            self.model, effects = self.update_fn(msg, self.model)
        except Exception as exc:  # a bug in one update must not stop the app
            js.console.error("update failed for %r: %r" % (msg, exc))
            return
        self._after(effects)

    def _after(self, effects):
        for fx in effects or ():
            self._run(fx)
        self._subscribe()
        if not self.frame_pending:
            self.frame_pending = True
            js.requestAnimationFrame(self._frame)

    def _render(self, *_):
        self.frame_pending = False
        t0 = js.performance.now() if self.timings is not None else 0
        new = h("div", {"id": "app-root"}, [self.view_fn(self.model)])
        follow = False
        if self.vroot is None:
            self.root.replaceChildren(self.applier.build(new))
        else:
            # a view that marks an element data-follow (the chat) stays scrolled to the bottom
            # while the person is at the bottom, so streamed text stays in sight
            follow = js.document.querySelector("[data-follow]") is not None and _at_bottom()
            self.applier.apply(diff(self.vroot, new))
        self.vroot = new
        if follow:
            js.window.scrollTo(0, js.document.documentElement.scrollHeight)
        if self.focus_main:
            self.focus_main = False
            main = js.document.getElementById("main")
            if main is not None:
                main.focus()
        if self.timings is not None:
            self.timings.push(js.performance.now() - t0)
        if self.first_render:
            self.first_render = False
            js.performance.mark("agentstead:first-render")

    def _on_event(self, handler, event):
        if event.type == "submit":
            event.preventDefault()
        msg = handler(event) if callable(handler) and not isinstance(handler, Msg) else handler
        self.dispatch(msg)

    def _on_link(self, event):
        # in-app links navigate with the History API; /auth and /api are real page loads
        if event.defaultPrevented or event.button != 0 or event.metaKey or event.ctrlKey or event.shiftKey:
            return
        a = event.target.closest("a")
        if a is None or a.target or a.hasAttribute("download"):
            return
        href = a.getAttribute("href") or ""
        if not href.startswith("/") or href.startswith("//") or href.startswith("/auth/") or href.startswith("/api/"):
            return
        event.preventDefault()
        self._run(Navigate(href))

    # effects
    def _run(self, fx):
        if isinstance(fx, Navigate):
            if fx.path != _here():
                if fx.replace:
                    js.history.replaceState(None, "", fx.path)
                else:
                    js.history.pushState(None, "", fx.path)
                    js.window.scrollTo(0, 0)
                    self.focus_main = True
            self.dispatch(self.on_url(_here()))
        elif isinstance(fx, Http):
            self._fetch(fx, retried=False)
        elif isinstance(fx, Send):
            for s in self.sockets.values():
                # readyState 1 (OPEN): the server's close frame (4001 after "log out
                # everywhere") can arrive before onclose runs; sending then is an error
                if s["ws"] is not None and s["open"] and s["ws"].readyState == 1:
                    s["ws"].send(json.dumps(fx.message))
        elif isinstance(fx, Delay):
            js.setTimeout(jsffi.create_proxy(lambda *_: self.dispatch(fx.msg)), fx.ms)
        elif isinstance(fx, Remember):
            try:                 # storage can be full or switched off: remembering is best effort
                if fx.value is None:
                    js.localStorage.removeItem(fx.key)
                else:
                    js.localStorage.setItem(fx.key, str(fx.value))
            except Exception:
                pass
        elif isinstance(fx, Recall):
            try:
                value = js.localStorage.getItem(fx.key)
            except Exception:
                value = None
            self.dispatch(fx.to_msg(value))

    def _fetch(self, fx, retried, attempt=0):
        headers = {"Accept": "application/json"}
        opts = {"method": fx.method, "credentials": "same-origin", "headers": headers}
        if fx.body is not None:
            headers["Content-Type"] = "application/json"
            opts["body"] = json.dumps(fx.body)
        if fx.method not in ("GET", "HEAD") and self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        if getattr(fx, "key", None):
            headers["Idempotency-Key"] = fx.key
        # boot.mjs starts the first page's GETs while WebAssembly loads; take one if it is ours
        promise = js.agentsteadEarly(fx.url) if fx.method == "GET" and not retried else None
        if promise is None:
            promise = js.fetch(fx.url, jsffi.to_js(opts))

        def got(resp):
            status = resp.status
            resp.text().then(jsffi.create_proxy(lambda body: self._got(fx, retried, status, body, attempt)))
        promise.then(jsffi.create_proxy(got), jsffi.create_proxy(
            lambda err: self._failed_try(fx, retried, attempt,
                                         ApiError(0, "network_error", "The server could not be reached."))))

    def _failed_try(self, fx, retried, attempt, err):
        """A keyed POST the server may not have seen (or answered busy) goes again, same key."""
        if getattr(fx, "key", None) and err.status in RETRY_STATUSES and attempt < RETRIES:
            js.setTimeout(jsffi.create_proxy(lambda *_: self._fetch(fx, retried, attempt + 1)),
                          backoff_ms(attempt) + int(js.Math.random() * 250))
            return
        self._fail(fx, err)

    def _got(self, fx, retried, status, body, attempt=0):
        data = _json(body)
        if 200 <= status < 300:
            if isinstance(data, dict) and data.get("csrf_token") and fx.url in ("/api/me", "/auth/refresh"):
                self.csrf = data["csrf_token"]   # every later unsafe request carries it
            if fx.on_ok is not None:
                msg = reply_message(fx, status, data)
                self.dispatch(msg)
            return
        err = (data or {}).get("error") if isinstance(data, dict) else None
        err = ApiError(status, (err or {}).get("code") or "http_%d" % status,
                       (err or {}).get("message") or "The request failed (%d)." % status, (err or {}).get("details"),
                       data)
        if status == 401 and err.code == "token_expired" and not retried and fx.url != "/auth/refresh":
            self._fetch(Http("POST", "/auth/refresh", None,
                             lambda _: self._fetch(fx, retried=True),
                             lambda e: self._fail(fx, e)), retried=True)
            return
        self._failed_try(fx, retried, attempt, err)

    def _fail(self, fx, err):
        if err.status == 401 and fx.url not in ("/auth/providers",):
            self.dispatch(self.on_unauthorized())
        if fx.on_err is not None:
            self.dispatch(fx.on_err(err))

    # subscriptions
    def _subscribe(self):
        wanted = {s.key: s for s in self.subs_fn(self.model)}
        for key in list(self.sockets):
            if key not in wanted:
                s = self.sockets.pop(key)
                s["closed_by_us"] = True
                if s.get("timer") is not None:
                    js.clearInterval(s["timer"])
                if s["ws"] is not None:
                    s["ws"].close(1000)
        for key, sub in wanted.items():
            if key in self.sockets:
                self.sockets[key]["sub"] = sub
            elif isinstance(sub, Every):
                self.sockets[key] = s = {"sub": sub, "ws": None, "open": False, "closed_by_us": False}
                s["timer"] = js.setInterval(jsffi.create_proxy(
                    lambda *_, s=s: self.dispatch(s["sub"].to_msg(js.Date.now()))), sub.ms)
            else:
                self.sockets[key] = {"sub": sub, "ws": None, "open": False, "attempt": 0, "closed_by_us": False}
                self._connect(self.sockets[key])

    def _connect(self, s):
        if s["closed_by_us"]:
            return
        scheme = "wss:" if js.location.protocol == "https:" else "ws:"
        ws = js.WebSocket.new(scheme + "//" + js.location.host + s["sub"].url)
        s["ws"] = ws

        def opened(*_):
            s["open"], s["attempt"] = True, 0
            self.dispatch(s["sub"].on_open())

        def message(event):
            data = _json(event.data)
            if isinstance(data, dict):
                self.dispatch(s["sub"].on_message(data))

        def closed(event):
            was_open, s["open"], s["ws"] = s["open"], False, None
            if s["closed_by_us"]:
                return
            self.dispatch(s["sub"].on_close(event.code))
            if event.code == 4001:     # the session ended: no point reconnecting
                return
            delay = 0 if was_open and s["attempt"] == 0 else backoff_ms(s["attempt"])
            s["attempt"] += 1
            js.setTimeout(jsffi.create_proxy(lambda *_: self._connect(s)), delay + int(js.Math.random() * 250))

        ws.onopen = jsffi.create_proxy(opened)
        ws.onmessage = jsffi.create_proxy(message)
        ws.onclose = jsffi.create_proxy(closed)


def _at_bottom():
    return js.window.innerHeight + js.window.scrollY >= js.document.documentElement.scrollHeight - 80


def _here():
    return js.location.pathname + js.location.search


def start(init, update, view, subscriptions, on_url, on_unauthorized, root_id="app"):
    return Program(init, update, view, subscriptions, on_url, on_unauthorized, js.document.getElementById(root_id))

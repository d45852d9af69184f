"""The program in the browser: the dispatch loop (update now, render once per animation frame),
the effects update returns (runtime.Http, Navigate, Delay, Remember, Recall) and the
subscriptions (runtime.Socket with the topics it follows, runtime.Every), executed on behalf of
the app. Only this module touches the browser beyond the DOM the applier patches."""

try:
    import js
    import jsffi
except ImportError:  # CPython: the unit tests import every module; nothing here runs without a browser
    js = jsffi = None

import json

from runtime import (Msg, Http, Navigate, Delay, Remember, Recall, Copy, Focus, LoadCode, CodeLoaded, ApiError, Every,
                     Topics, Applier, h, diff, reply_message, failed_messages, json_or_none, backoff_ms, RETRIES,
                     RETRY_STATUSES)


class Program:
    """init(url) -> (model, effects); update(msg, model) -> (model, effects);
    view(model) -> vnode; subscriptions(model) -> [Socket | Every]; on_url(url) -> msg;
    on_unauthorized() -> msg (a 401 the runtime could not fix by refreshing)."""

    def __init__(self, init, update, view, subscriptions, on_url, on_unauthorized, root, on_key=None):
        self.update_fn, self.view_fn, self.subs_fn = update, view, subscriptions
        self.on_url, self.on_unauthorized = on_url, on_unauthorized
        self.root = root
        self.applier = Applier(js.document, root, self._on_event)
        self.vroot = None
        self.frame_pending = False
        self.csrf = None
        self.subs = {}            # subscription key -> its state (a socket's, or a clock's)
        self.first_render = True
        self.unopened = []        # sockets wanted before the first render: opened after it
        self.focus_main = False   # after an in-app navigation, focus moves to <main> (screen readers follow)
        self.timings = getattr(js, "agentsteadRenders", None)   # a benchmark's array of render ms, or None
        self.first_frame = getattr(js, "agentsteadFirstFrame", None)
        self.early = 0            # boot.mjs's early answers taken but not yet handled
        self.effects = {Navigate: self._navigate, Http: lambda fx: self._fetch(fx, retried=False),
                        Delay: self._delay, Remember: self._remember, Recall: self._recall,
                        Copy: self._copy, Focus: self._focus, LoadCode: lambda fx: js.agentsteadLazy()}
        self.focus_next = None    # a Focus effect to carry out after the next render
        self.focus_saved = None   # the element focused when a Focus(keep=True) came
        self._frame = jsffi.create_proxy(self._render)
        js.window.addEventListener("popstate", jsffi.create_proxy(lambda e: self.dispatch(self.on_url(_here()))))
        js.document.addEventListener("click", jsffi.create_proxy(self._on_link))
        if on_key is not None:    # keyboard shortcuts: on_key(event) -> a message or None
            js.document.addEventListener("keydown", jsffi.create_proxy(lambda e: self.dispatch(on_key(e))))
        # the Markdown parser arrived after the app started: draw again (views memo on whether it is there)
        js.agentsteadMarkdownReady = jsffi.create_proxy(lambda *_: self._after(()))
        # the modules built apart are in (boot.mjs): the app shows the page that waited for them
        js.agentsteadLazyReady = jsffi.create_proxy(lambda *_: self.dispatch(CodeLoaded()))
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
            self.effects[type(fx)](fx)
        self._subscribe()
        if not self.frame_pending:
            self.frame_pending = True
            if self.vroot is None and self.first_frame is not None:
                # boot.mjs's timer (its wait for a slow answer is bounded) or, sooner, the last of
                # the early answers once handled (_early_done): whichever comes first draws
                self.first_frame(jsffi.create_proxy(lambda *_: self.vroot is None and self._render()))
            else:
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
        if self.focus_next is not None:
            self._focused(self.focus_next)
        elif self.focus_main:
            self.focus_main = False
            main = js.document.getElementById("main")
            if main is not None:
                main.focus()
        if self.timings is not None:
            self.timings.push(js.performance.now() - t0)
        if self.first_render:
            self.first_render = False
            js.performance.mark("agentstead:first-render")
            for s in self.unopened:
                js.setTimeout(jsffi.create_proxy(lambda *_, s=s: self._connect(s)), 0)
            self.unopened = []

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
        self._navigate(Navigate(href))

    # effects
    def _navigate(self, fx):
        if fx.path != _here():
            if fx.replace:
                js.history.replaceState(None, "", fx.path)
            else:
                js.history.pushState(None, "", fx.path)
                js.window.scrollTo(0, 0)
                self.focus_main = True
        self.dispatch(self.on_url(_here()))

    def _focus(self, fx):
        if fx.keep:
            self.focus_saved = js.document.activeElement
        el = js.document.getElementById(fx.element_id) if fx.element_id else None
        if el is not None:
            el.focus()            # there already (the composer): at once, so the next key goes there
        self.focus_next = fx      # and after the render (an element the render creates or replaces)

    def _focused(self, fx):
        self.focus_next = None
        el = js.document.getElementById(fx.element_id) if fx.element_id else self.focus_saved
        if not fx.element_id:
            self.focus_saved = None
        if el is not None and el.isConnected:
            el.focus()

    def _delay(self, fx):
        js.setTimeout(jsffi.create_proxy(lambda *_: self.dispatch(fx.msg)), fx.ms)

    def _remember(self, fx):
        try:                 # storage can be full or switched off: remembering is best effort
            if fx.value is None:
                js.localStorage.removeItem(fx.key)
            else:
                js.localStorage.setItem(fx.key, str(fx.value))
        except Exception:
            pass

    def _copy(self, fx):
        try:                 # no clipboard (insecure origin, permission refused): nothing to do
            done = js.navigator.clipboard.writeText(str(fx.text))
            done.catch(jsffi.create_proxy(lambda *_: None))     # refused: not an error to report
        except Exception:
            pass

    def _recall(self, fx):
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
        if fx.key:
            headers["Idempotency-Key"] = fx.key
        # boot.mjs starts the first page's GETs while WebAssembly loads; take one if it is ours
        # (a response already read: status and text(), what got() uses)
        promise = js.agentsteadEarly(fx.url) if fx.method == "GET" and not retried else None
        early = promise is not None
        if early:
            self.early += 1
        else:
            promise = js.fetch(fx.url, jsffi.to_js(opts))

        def took(body, status):
            self._got(fx, retried, status, body, attempt)
            if early:
                self._early_done()

        def failed(err):
            self._failed_try(fx, retried, attempt, ApiError(0, "network_error", "The server could not be reached."))
            if early:
                self._early_done()

        def got(resp):
            status = resp.status
            resp.text().then(jsffi.create_proxy(lambda body: took(body, status)))
        promise.then(jsffi.create_proxy(got), jsffi.create_proxy(failed))

    def _early_done(self):
        """An early answer is handled: after the last, the first render comes at once (the same
        task), not in a task after it."""
        self.early -= 1
        if self.early == 0 and self.vroot is None and self.frame_pending:
            self._render()

    def _failed_try(self, fx, retried, attempt, err):
        """A keyed POST the server may not have seen (or answered busy) goes again, same key."""
        if fx.key and err.status in RETRY_STATUSES and attempt < RETRIES:
            js.setTimeout(jsffi.create_proxy(lambda *_: self._fetch(fx, retried, attempt + 1)),
                          backoff_ms(attempt) + int(js.Math.random() * 250))
            return
        self._fail(fx, err)

    def _got(self, fx, retried, status, body, attempt=0):
        data = json_or_none(body)
        if 200 <= status < 300:
            if isinstance(data, dict) and data.get("csrf_token") and fx.url in ("/api/me", "/auth/refresh"):
                self.csrf = data["csrf_token"]   # every later unsafe request carries it
            if fx.on_ok is not None:
                self.dispatch(reply_message(fx, status, data))
            return
        err = ApiError.of(status, data)
        if status == 401 and err.code == "token_expired" and not retried and fx.url != "/auth/refresh":
            self._fetch(Http("POST", "/auth/refresh", None,
                             lambda _: self._fetch(fx, retried=True),
                             lambda e: self._fail(fx, e)), retried=True)
            return
        self._failed_try(fx, retried, attempt, err)

    def _fail(self, fx, err):
        for msg in failed_messages(fx, err, self.on_unauthorized):
            self.dispatch(msg)

    # subscriptions: start what is newly wanted, stop what is not, keep sockets' topics in step
    def _subscribe(self):
        wanted = {s.key: s for s in self.subs_fn(self.model)}
        for key in list(self.subs):
            if key not in wanted:
                s = self.subs.pop(key)
                s["closed_by_us"] = True
                if s.get("timer") is not None:
                    js.clearInterval(s["timer"])
                if s.get("ws") is not None:
                    s["ws"].close(1000)
        for key, sub in wanted.items():
            if key in self.subs:
                self.subs[key]["sub"] = sub
                self._sync(self.subs[key])
            elif isinstance(sub, Every):
                self.subs[key] = s = {"sub": sub, "closed_by_us": False}
                s["timer"] = js.setInterval(jsffi.create_proxy(
                    lambda *_, s=s: self.dispatch(s["sub"].to_msg(js.Date.now()))), sub.ms)
            else:
                self.subs[key] = {"sub": sub, "ws": None, "open": False, "attempt": 0, "closed_by_us": False,
                                  "topics": Topics()}
                self._connect(self.subs[key])

    def _sync(self, s):
        if s.get("open"):
            for message in s["topics"].sync(s["sub"].topics):
                self._send(s, message)

    def _send(self, s, message):
        # readyState 1 (OPEN): the server's close frame (4001 after "log out everywhere") can
        # arrive before onclose runs; sending then is an error (onclose resets the topics)
        if s["ws"] is not None and s["open"] and s["ws"].readyState == 1:
            s["ws"].send(json.dumps(message))

    def _connect(self, s):
        if s["closed_by_us"]:
            return
        if self.first_render:
            # Opening a WebSocket costs the page 1-10 ms (and the server its handshake) while the
            # first render waits; the socket opens in the task after it instead. Nothing is missed:
            # topics are followed from their cursors once it is open.
            self.unopened.append(s)
            return
        scheme = "wss:" if js.location.protocol == "https:" else "ws:"
        ws = js.WebSocket.new(scheme + "//" + js.location.host + s["sub"].url)
        s["ws"] = ws

        def opened(*_):
            s["open"], s["attempt"] = True, 0
            s["topics"].reset()
            self.dispatch(s["sub"].on_open())
            self._sync(s)

        def message(event):
            data = json_or_none(event.data)
            if isinstance(data, dict):
                self.dispatch(s["sub"].on_message(s["topics"].receive(data)))

        def closed(event):
            was_open, s["open"], s["ws"] = s["open"], False, None
            s["topics"].reset()
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


def start(init, update, view, subscriptions, on_url, on_unauthorized, root_id="app", on_key=None):
    return Program(init, update, view, subscriptions, on_url, on_unauthorized, js.document.getElementById(root_id),
                   on_key)

"""The application: routes (History API), the signed-in user, the live socket, and the page
shown (each page module owns its Model, init, update, view and subscriptions; README.md).

What the app tells the page: KnowUser once /api/me answers, Connected / Disconnected as the
socket opens and closes, Live for each socket message. The socket follows the topics the page's
subscriptions(model) names (runtime.Topics keeps them in step), so a page never subscribes itself.

Page modules are imported when first shown: compiling or loading every page before
the first render would put the admin page's code between a person and their chat. A page built
apart from the first load (frontend/build.py LAZY: the workflows, account and admin pages) is fetched then (LoadCode)
and shown when it is in (CodeLoaded)."""

import runtime
from runtime import (Update, Http, Navigate, Socket, KnowUser, Connected, Disconnected, Live, SessionEnded, h, Record,
                     LoadCode, CodeLoaded)
import fmt
import markdown
import shortcuts
from shortcuts import ShowShortcuts

PAGE_NAMES = ("signin", "agents", "chat", "runs", "workflows", "account", "admin")
NAV = (("agents", "/agents", "Agents"), ("chat", "/chat", "Chat"), ("workflows", "/workflows", "Workflows"),
       ("runs", "/runs", "Runs"), ("account", "/account", "Account"))
_modules = {}


def page_module(name):
    """The module of a page (imported on first use), or None for names that are not pages."""
    if name not in PAGE_NAMES:
        return None
    module = _modules.get(name)
    if module is None:
        try:
            module = _modules[name] = __import__(name)
        except ImportError:     # built apart and not fetched yet (goto asks for it)
            return None
    return module


def parse_query(qs):
    out = {}
    for part in qs.split("&"):
        if part:
            k, _, v = part.partition("=")
            out[_unquote(k)] = _unquote(v)
    return out


def _unquote(s):
    s = s.replace("+", " ")
    if "%" not in s:
        return s
    raw, i = bytearray(), 0
    b = s.encode()
    while i < len(b):
        if b[i] == 37 and i + 2 < len(b):
            try:
                raw.append(int(b[i + 1:i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        raw.append(b[i])
        i += 1
    return raw.decode()


def route(url):
    """(page name, argument) for a URL; ("redirect", path) for paths that live elsewhere."""
    path, _, qs = url.partition("?")
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "redirect", "/agents"
    if parts[0] in ("signin", "runs") and len(parts) == 1:
        return parts[0], parse_query(qs)
    if parts[0] in ("agents", "account", "admin") and len(parts) == 1:
        return parts[0], None
    if parts[0] == "chat" and len(parts) <= 2:
        return "chat", parts[1] if len(parts) == 2 else None
    if parts[0] == "workflows" and len(parts) <= 2:
        return "workflows", (parts[1] if len(parts) == 2 else None, parse_query(qs))
    return "notfound", path


class Model(Record):
    def __init__(self):
        self.url = "/"
        self.page = None             # name of the current page
        self.sub = None              # the current page's model
        self.me = None               # the signed-in user, once /api/me answered
        self.online = False          # the live socket is open
        self.ever_online = False
        self.session_ended = False
        self.loading = False         # the page's modules are being fetched (LoadCode)
        self.shortcuts = False       # the keyboard shortcuts' list is open (shortcuts.py)


def init(url):
    model, effects = goto(Model(), url)
    return model, [Http("GET", "/api/me", None, GotMe, MeFailed)] + effects


def goto(model, url):
    page, arg = route(url)
    if page == "redirect":
        return model, [Navigate(arg, replace=True)]
    old = _shown(model)
    if page == model.page and hasattr(old, "same_page") and old.same_page(model.sub, arg):
        return model.but(url=url), []           # the page put what it shows into the URL
    module = page_module(page)
    if module is None:
        loading = page in PAGE_NAMES
        return model.but(url=url, page=page, sub=arg, loading=loading), [LoadCode()] if loading else []
    sub, fx = module.init(arg)
    m = model.but(url=url, page=page, sub=sub, loading=False)
    for msg in (model.me is not None and KnowUser(model.me.get("id")), model.online and Connected(False)):
        if msg:
            m, more = _to_page(msg, m)
            fx = fx + more
    return m, fx


def _shown(model):
    """The module of the page shown; None while it is fetched (model.sub is then its argument)."""
    return None if model.loading else page_module(model.page)


def _to_page(msg, model):
    """A message for the page shown (its own, or one the app hands over); a page's late reply
    after another page took its place is dropped by that page's update table."""
    module = _shown(model)
    if module is None:
        return model, []
    sub, effects = module.update(msg, model.sub)
    return (model if sub is model.sub else model.but(sub=sub)), effects


on = Update(otherwise=_to_page)
update = on.update


@on("url")
def UrlChanged(model, url):
    if url == model.url and model.page is not None:
        return model
    return goto(model, url)


@on(CodeLoaded)
def _code_loaded(model):
    return goto(model.but(page=None), model.url) if model.loading else model


@on("me")
def GotMe(model, me):
    markdown.allow_images((me.get("chat") or {}).get("image_origins"))
    return _to_page(KnowUser(me["user"].get("id")), model.but(me=me["user"], session_ended=False))


@on("error")
def MeFailed(model, error):
    return model


@on()
def Unauthorized(model):
    if model.page == "signin":
        return model.but(me=None)
    path = model.url.partition("?")[0]
    return model.but(me=None), [Navigate("/signin?next=" + fmt.quote(path).replace("%2F", "/"), replace=True)]


@on(ShowShortcuts)
def _show_shortcuts(model, shown):
    return shortcuts.shown(model, shown)


@on()
def SignOut(model):
    return model, [Http("POST", "/auth/logout", None, lambda _: SignedOut(), lambda _: SignedOut())]


@on()
def SignedOut(model):
    return model.but(me=None), [Navigate("/signin")]


@on(SessionEnded)
def _session_ended(model):
    return model.but(me=None, online=False), [Navigate("/signin", replace=True)]


@on()
def WsOpened(model):
    return _to_page(Connected(model.ever_online), model.but(online=True, ever_online=True))


@on("code")
def WsClosed(model, code):
    m, fx = _to_page(Disconnected(), model.but(online=False))
    if code == 4001:     # the session ended (logout elsewhere, revoked)
        return m.but(me=None, session_ended=True), fx + [Navigate("/signin?error=session_ended", replace=True)]
    return m, fx


@on("data")
def WsMessage(model, data):
    data = runtime.live_message(data)
    return _to_page(Live(data), model) if data is not None else model


def subscriptions(model):
    """The socket while signed in, following the page's topics; the page's clocks."""
    if model.me is None:
        return []
    page = _shown(model)
    topics = page.subscriptions(model.sub) if hasattr(page, "subscriptions") else {}
    clocks = page.clocks(model.sub) if hasattr(page, "clocks") else []
    return [Socket("/ws", WsOpened, WsClosed, WsMessage, topics)] + clocks


def view(model):
    page = _shown(model)
    content = page.view(model.sub) if page else _no_page(model)
    offline = model.me is not None and model.ever_online and not model.online
    return h("div", {"class": "shell"}, [
        h("a", {"class": "skip", "href": "#main"}, "Skip to content"),
        h("header", {"class": "top"}, [
            h("a", {"class": "brand", "href": "/agents"}, "Agentstead"),
            model.me and h("nav", {"aria-label": "Main"}, h("ul", {}, [
                h("li", {}, h("a", _current({"href": href}, model.page == page), label)) for page, href, label in NAV
            ] + ([h("li", {}, h("a", _current({"href": "/admin"}, model.page == "admin"), "Admin"))]
                 if model.me.get("role") == "admin" else []))),
            model.me and h("div", {"class": "who"}, [
                h("span", {"class": "muted"}, model.me.get("email", "")),
                h("button", {"type": "button", "class": "link", "aria-label": "Keyboard shortcuts",
                             "aria-keyshortcuts": "?", "onclick": ShowShortcuts(True)}, "Keys (?)"),
                h("button", {"type": "button", "class": "link", "onclick": SignOut()}, "Sign out")]),
        ]),
        offline and h("div", {"class": "banner", "role": "status"},
                      "Offline: reconnecting… Replies will continue where they left off."),
        h("main", {"id": "main", "tabindex": "-1", "data-page": model.page or ""}, content),
        model.shortcuts and shortcuts.view(),
    ])


def _no_page(model):
    if model.loading:
        return h("p", {"class": "booting", "role": "status"}, "Loading…")
    return h("section", {"class": "card narrow"}, [
        h("h1", {}, "Not found"), h("p", {}, ["Nothing lives at ", h("code", {}, str(model.sub)), "."]),
        h("p", {}, h("a", {"href": "/agents"}, "Go to your agents"))])


def _current(attrs, current):
    if current:
        attrs["aria-current"] = "page"
    return attrs


def main():
    import program
    return program.start(init, update, view, subscriptions, UrlChanged, Unauthorized, on_key=shortcuts.key)

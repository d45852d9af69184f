"""The application: routes (History API), the signed-in user, the live socket,
and the current page (each page module owns its Model, init, update and view).

Page modules are imported when first shown: compiling or loading every page before
the first render would put the admin page's code between a person and their chat."""

import runtime
from runtime import Msg, Http, Navigate, Socket, Every, SessionEnded, h, Record
import fmt


class UrlChanged(Msg):
    def __init__(self, url):
        self.url = url


class GotMe(Msg):
    def __init__(self, me):
        self.me = me


class MeFailed(Msg):
    def __init__(self, error):
        self.error = error


class Unauthorized(Msg):
    pass


class SignOut(Msg):
    pass


class SignedOut(Msg):
    def __init__(self, _=None):
        pass


class WsOpened(Msg):
    pass


class WsClosed(Msg):
    def __init__(self, code):
        self.code = code


class WsMessage(Msg):
    def __init__(self, data):
        self.data = data


PAGE_NAMES = ("signin", "agents", "chat", "runs", "workflows", "account", "admin")
_modules = {}


def page_module(name):
    """The module of a page (imported on first use), or None for names that are not pages."""
    if name not in PAGE_NAMES:
        return None
    module = _modules.get(name)
    if module is None:
        module = _modules[name] = __import__(name)
    return module
NAV = (("agents", "/agents", "Agents"), ("chat", "/chat", "Chat"), ("workflows", "/workflows", "Workflows"),
       ("runs", "/runs", "Runs"), ("account", "/account", "Account"))


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
    if parts == ["signin"]:
        return "signin", parse_query(qs)
    if parts == ["agents"]:
        return "agents", None
    if parts[0] == "chat" and len(parts) <= 2:
        return "chat", parts[1] if len(parts) == 2 else None
    if parts == ["runs"]:
        return "runs", parse_query(qs)
    if parts[0] == "workflows" and len(parts) <= 2:
        return "workflows", (parts[1] if len(parts) == 2 else None, parse_query(qs))
    if parts == ["account"]:
        return "account", None
    if parts == ["admin"]:
        return "admin", None
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


def init(url):
    model, effects = goto(Model(), url)
    return model, [Http("GET", "/api/me", None, GotMe, MeFailed)] + effects


def goto(model, url):
    page, arg = route(url)
    if page == "redirect":
        return model, [Navigate(arg, replace=True)]
    effects = []
    old = page_module(model.page)
    if page == model.page and hasattr(old, "same_page") and old.same_page(model.sub, arg):
        return model.but(url=url), []           # the page put what it shows into the URL
    if old is not None and hasattr(old, "leave"):
        effects += old.leave(model.sub)
    module = page_module(page)
    if page in ("signin", "admin"):
        sub, fx = module.init(arg)
    elif page == "agents":
        sub, fx = module.init()
    elif page in ("chat", "runs", "workflows", "account"):
        sub, fx = module.init(arg, model.online)
    else:
        sub, fx = arg, []
    know = getattr(module, "KnowUser", None) if module is not None else None
    if know is not None and model.me is not None:
        sub, more = module.update(know(model.me.get("id")), sub)
        fx = fx + more
    return model.but(url=url, page=page, sub=sub), effects + fx


def update(msg, model):
    if isinstance(msg, UrlChanged):
        if msg.url == model.url and model.page is not None:
            return model, []
        return goto(model, msg.url)
    if isinstance(msg, GotMe):
        m = model.but(me=msg.me["user"], session_ended=False)
        return _live(m, "KnowUser", m.me.get("id"))
    if isinstance(msg, MeFailed):
        return model, []
    if isinstance(msg, Unauthorized):
        if model.page == "signin":
            return model.but(me=None), []
        path = model.url.partition("?")[0]
        return model.but(me=None), [Navigate("/signin?next=" + fmt.quote(path).replace("%2F", "/"), replace=True)]
    if isinstance(msg, SignOut):
        return model, [Http("POST", "/auth/logout", None, SignedOut, SignedOut)]
    if isinstance(msg, SignedOut):
        return model.but(me=None), [Navigate("/signin")]
    if isinstance(msg, SessionEnded):
        return model.but(me=None, online=False), [Navigate("/signin", replace=True)]
    if isinstance(msg, WsOpened):
        return _live(model.but(online=True, ever_online=True), "Connected")
    if isinstance(msg, WsClosed):
        m = model.but(online=False)
        if msg.code == 4001:     # the session ended (logout elsewhere, revoked)
            m = m.but(me=None, session_ended=True)
            m, fx = _live(m, "Disconnected")
            return m, fx + [Navigate("/signin?error=session_ended", replace=True)]
        return _live(m, "Disconnected")
    if isinstance(msg, WsMessage):
        data = runtime.live_message(msg.data)
        return _live(model, "Live", data) if data is not None else (model, [])
    return _to_page(msg, model)


def _live(model, name, *args):
    """Hand a socket happening to the current page, if it follows live events."""
    module = page_module(model.page)
    cls = getattr(module, name, None) if module is not None else None
    if cls is None:
        return model, []
    return _to_page(cls(*args), model)


def _to_page(msg, model):
    """Hand a page's own message to the page's update; others' (late replies) are dropped."""
    module = page_module(model.page)
    if module is None or not isinstance(msg, module.Msg):
        return model, []
    sub, effects = module.update(msg, model.sub)
    return model.but(sub=sub), effects


def subscriptions(model):
    if model.me is None:
        return []
    subs = [Socket("/ws", WsOpened, WsClosed, WsMessage)]
    if model.page == "runs":
        runs = page_module("runs")
        if runs.has_active(model.sub):
            subs.append(Every(1000, runs.Tick))      # durations of active runs count up
    return subs


def view(model):
    page = page_module(model.page)
    content = page.view(model.sub) if page else h("section", {"class": "card narrow"}, [
        h("h1", {}, "Not found"), h("p", {}, ["Nothing lives at ", h("code", {}, str(model.sub)), "."]),
        h("p", {}, h("a", {"href": "/agents"}, "Go to your agents"))])
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
                h("button", {"type": "button", "class": "link", "onclick": SignOut()}, "Sign out")]),
        ]),
        offline and h("div", {"class": "banner", "role": "status"},
                      "Offline: reconnecting… Replies will continue where they left off."),
        h("main", {"id": "main", "tabindex": "-1", "data-page": model.page or ""}, content),
    ])


def _current(attrs, current):
    if current:
        attrs["aria-current"] = "page"
    return attrs


def main():
    return runtime.start(init, update, view, subscriptions, UrlChanged, Unauthorized)

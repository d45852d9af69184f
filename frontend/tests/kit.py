"""Helpers for the frontend's tests: walk virtual trees, find elements, fire handlers.
Plain asserts, no pytest: the same modules run under MicroPython (run.mjs) and CPython
(tests/unit/test_frontend_pages.py). Import at the top of a module only: the CPython loader
renames the SPA's modules once they are imported, so an import inside a test finds nothing."""

import runtime


def node(n):
    """The VNode of n (rendering a memo)."""
    return runtime.rendered(n)


def walk(n):
    n = node(n)
    yield n
    if n.tag is not None:
        for c in n.children:
            for x in walk(c):
                yield x


def text_of(n):
    return "".join(x.text for x in walk(n) if x.tag is None)


def find_all(tree, tag=None, text=None, **attrs):
    out = []
    for x in walk(tree):
        if x.tag is None or (tag is not None and x.tag != tag):
            continue
        if any(x.attrs.get(k.replace("_", "-")) != v for k, v in attrs.items()):
            continue
        if text is not None and text not in text_of(x):
            continue
        out.append(x)
    return out


def find(tree, tag=None, text=None, **attrs):
    found = find_all(tree, tag, text, **attrs)
    assert found, "no <%s> with %r %r in %s" % (tag, text, attrs, text_of(tree)[:300])
    return found[0]


class Target:
    def __init__(self, value="", checked=False):
        self.value, self.checked = value, checked

    def select(self):
        pass


class Event:
    def __init__(self, value="", key=None, shift=False):
        self.target = Target(value)
        self.key, self.shiftKey, self.isComposing = key, shift, False
        self.prevented = False

    def preventDefault(self):
        self.prevented = True


def fire(el, event_name, value="", **kw):
    """The message a handler gives (a Msg as is, or a function called with a fake event)."""
    handler = el.attrs.get("on" + event_name)
    assert handler is not None, "<%s> has no on%s" % (el.tag, event_name)
    if isinstance(handler, runtime.Msg):
        return handler
    return handler(Event(value, **kw))


def effects_of(effects, cls):
    return [e for e in effects if isinstance(e, cls)]


def raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    raise AssertionError("%s not raised" % exc.__name__)

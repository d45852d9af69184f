"""Virtual nodes and the DOM they stand for: h, text and memo build a tree; diff turns two
trees into patch operations (pure, tested under CPython and MicroPython); Applier runs those
operations against a DOM (the browser's, or tests' fakedom) with one delegated listener per
event type. The runtime (runtime.py) re-exports what pages use."""

try:
    import jsffi
except ImportError:  # CPython (unit tests)
    jsffi = None

# ---------------------------------------------------------------- virtual nodes

class VNode:
    """el: the DOM node once built. eid: the id under which its handlers are kept (0: none), also
    the element's `asid`: forgetting a removed subtree's handlers reads no element."""
    __slots__ = ("tag", "attrs", "children", "key", "text", "el", "eid")

    def __init__(self, tag, attrs, children, key=None, text=None):
        self.tag, self.attrs, self.children, self.key, self.text = tag, attrs, children, key, text
        self.el = None
        self.eid = 0

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
    new_node.el, new_node.eid = old_node.el, old_node.eid
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


def rendered(n):
    """The VNode of n, rendering a memo that has not been rendered yet."""
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
            # A new element has no attribute, property or handler to take away: None and False
            # cost no call into JavaScript here (each is one; the first render makes hundreds).
            if value is None or value is False:
                continue
            if name.startswith("on"):
                self.set_event(node, name, value)
            else:
                self.set_attr(el, name, value, svg, new=True)
        for c in node.children:
            el.appendChild(self.build(rendered(c), svg))
        return el

    def _in_svg(self, parent_el):
        return parent_el is not None and getattr(parent_el, "namespaceURI", None) == SVG_NS

    def set_attr(self, el, name, value, svg=False, new=False):
        """new: a just-built element, whose properties are not read first (nothing to compare)."""
        if name in PROPS and not svg:
            if name == "value":
                value = "" if value is None else str(value)
            if new or getattr(el, name) != value:
                setattr(el, name, value)
        elif value is None or value is False:
            el.removeAttribute(name)
        else:
            el.setAttribute(name, "" if value is True else str(value))

    def set_event(self, node, name, handler):
        eid = node.eid
        if not eid:
            if handler is None:
                return
            eid = node.eid = self.next_id
            self.next_id += 1
            node.el.asid = eid
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
        if node.eid:
            self.handlers.pop(node.eid, None)
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

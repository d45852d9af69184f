"""A small DOM with the browser's method names, for testing the applier without a browser
(runs under MicroPython and CPython). Imports stay at the top: the CPython loader renames
the SPA's modules once they are imported."""

import runtime

SVG_NS = "http://www.w3.org/2000/svg"


class Node:
    def __init__(self, tag=None, value=None, ns=None):
        self.tag, self.nodeValue, self.attrs, self.childNodes, self.parentNode = tag, value, {}, [], None
        self.namespaceURI = ns
        self.value = ""
        self.checked = False
        self.selected = False

    def appendChild(self, node):
        return self.insertBefore(node, None)

    def insertBefore(self, node, before):
        if node.parentNode is not None:
            node.parentNode.childNodes.remove(node)
        i = self.childNodes.index(before) if before is not None else len(self.childNodes)
        self.childNodes.insert(i, node)
        node.parentNode = self
        return node

    def removeChild(self, node):
        self.childNodes.remove(node)
        node.parentNode = None

    def replaceChild(self, new, old):
        self.insertBefore(new, old)
        self.removeChild(old)

    def setAttribute(self, name, value):
        self.attrs[name] = value

    def removeAttribute(self, name):
        self.attrs.pop(name, None)

    def addEventListener(self, etype, fn):
        pass

    def html(self):
        if self.tag is None:
            return self.nodeValue
        attrs = "".join(' %s="%s"' % (k, self.attrs[k]) for k in sorted(self.attrs))
        return "<%s%s>" % (self.tag, attrs) + "".join(c.html() for c in self.childNodes) + "</%s>" % self.tag

    def text(self):
        if self.tag is None:
            return self.nodeValue
        return "".join(c.text() for c in self.childNodes)


class Doc:
    def __init__(self):
        self.created = 0

    def createElement(self, tag):
        self.created += 1
        return Node(tag, ns="http://www.w3.org/1999/xhtml")

    def createElementNS(self, ns, tag):
        self.created += 1
        return Node(tag, ns=ns)

    def createTextNode(self, s):
        self.created += 1
        return Node(None, s)


def mount(vnode, on_event=None):
    """(applier, root element) with vnode rendered into a <body>."""
    doc = Doc()
    root = Node("body")
    applier = runtime.Applier(doc, root, on_event or (lambda handler, event: None))
    root.appendChild(applier.build(vnode))
    return applier, root


def patch(applier, old, new):
    applier.apply(runtime.diff(old, new))
    return new

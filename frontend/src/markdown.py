"""Model text as Markdown, drawn with the page's own virtual nodes.

markdown-it (through markdown-bridge.js; CommonMark + GFM tables and strikethrough, raw HTML
off) turns the text into its flat token list, and Prism tokenizes fenced code; both reach this
module as plain data. `view(text, on_copy)` builds the nodes from those tokens, and safe by
construction: every tag comes from the tables below (a token this module does not know adds
only its text), every attribute is one this module sets (no attribute of a token is copied
through), links only with http(s) or mailto URLs and rel="noopener noreferrer", images loaded
only from the origins the administrator allows (`allow_images`, from /api/me; without a
referrer, lazily; any other image is shown as a link to open by hand), raw HTML only ever as text. Task lists ("- [ ] a",
"- [x] b") are read here from the list items' text, as GFM does.

The parser is the browser's (`js.agentsteadMarkdown`); CPython tests install the same one run by
Node (`use_parser`). Without a parser (the script not loaded yet) text is shown as it is."""

import json

try:
    import js
except ImportError:  # CPython (unit tests)
    js = None

from vdom import h, memo

BLOCK = {"paragraph": "p", "blockquote": "blockquote", "bullet_list": "ul", "ordered_list": "ol",
         "list_item": "li", "table": "table", "thead": "thead", "tbody": "tbody", "tr": "tr", "th": "th",
         "td": "td", "em": "em", "strong": "strong", "s": "s"}
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
SCHEMES = ("http://", "https://", "mailto:")
ALIGN = {"text-align:left": "left", "text-align:center": "center", "text-align:right": "right"}
LANG_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789+#-_."

_parser = [None]
_images = [(), 0]    # origins whose images are loaded, and how often they changed (state())


def use_parser(fn):
    """Tests: parse with fn(text) -> the bridge's token list (the real markdown-it, run by Node)."""
    _parser[0] = fn


def available():
    """A parser is loaded (the page's script has run, or a test installed one). When it is not,
    the page's script is asked for (boot.mjs loads it once; the app draws again when it is in)."""
    if _parser[0] is not None:
        return True
    if js is None:
        return False
    if getattr(js, "agentsteadMarkdown", None) is not None:
        return True
    load = getattr(js, "agentsteadLoadMarkdown", None)
    if load is not None:
        load()
    return False


def allow_images(origins):
    """The origins (scheme://host[:port]) whose images are loaded: the administrator's
    AGENTSTEAD_CHAT_IMAGE_ORIGINS, as /api/me says; () loads none."""
    origins = tuple(str(o).lower() for o in origins or ())
    if origins != _images[0]:
        _images[0], _images[1] = origins, _images[1] + 1


def state():
    """What a drawn message depends on besides its text (a memo argument: an int, so equal
    states compare equal): whether a parser is loaded, and the image origins' changes."""
    return (1 if available() else 0) + 2 * _images[1]


def image_origin(url):
    """The origin of an http(s) URL whose images may load, or None: no other scheme, no
    user info, spaces, control characters or backslashes (which browsers read as '/')."""
    u = (url or "").strip()
    if any(c <= " " or c == "\\" for c in u):
        return None
    low = u.lower()
    for scheme in ("https://", "http://"):
        if low.startswith(scheme):
            rest = low[len(scheme):]
            end = len(rest)
            for stop in "/?#":
                at = rest.find(stop)
                if at != -1 and at < end:
                    end = at
            host = rest[:end]
            if not host or "@" in host:
                return None
            return scheme + host
    return None


def parse(text):
    """The bridge's flat token list for text, or None when no parser is loaded."""
    if _parser[0] is not None:
        return _parser[0](text)
    if js is not None and getattr(js, "agentsteadMarkdown", None) is not None:
        return json.loads(js.agentsteadMarkdown(text))
    return None


# ---------------------------------------------------------------- tokens -> tree

class Tok:
    """One token of the bridge: [type, tag, nesting, content, info, attrs, hidden, children,
    highlighted], plus the tokens it encloses (its `body`) once nested."""
    __slots__ = ("type", "tag", "content", "info", "attrs", "hidden", "inline", "code", "body")

    def __init__(self, raw):
        self.type, self.tag, self.content, self.info = raw[0], raw[1], raw[3] or "", raw[4] or ""
        self.attrs = raw[5] or ()
        self.hidden, self.inline, self.code = raw[6], raw[7], raw[8]
        self.body = []

    def attr(self, name):
        for pair in self.attrs:
            if pair[0] == name:
                return pair[1]
        return None


def nest(raw):
    """The flat list (nesting 1 opens, -1 closes) as a tree of Tok: the top-level tokens."""
    top = []
    stack = [top]
    for r in raw:
        if r[2] == -1:
            if len(stack) > 1:
                stack.pop()
            continue
        tok = Tok(r)
        if tok.type.endswith("_open"):
            tok.type = tok.type[:-5]
        stack[-1].append(tok)
        if r[2] == 1:
            stack.append(tok.body)
    return top


# ---------------------------------------------------------------- tree -> virtual nodes

def safe_href(url):
    """url when it is http(s) or mailto (case and surrounding space ignored), else None."""
    u = (url or "").strip()
    low = u.lower()
    for scheme in SCHEMES:
        if low.startswith(scheme) and len(u) > len(scheme):
            return u
    return None


def _language(info):
    word = (info or "").strip().split(" ")[0].lower()
    return "".join(c for c in word if c in LANG_CHARS)[:20]


def _highlighted(parts):
    out = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
        elif isinstance(p, list) and len(p) == 2 and isinstance(p[1], list):
            kind = "".join(c for c in str(p[0]) if c in LANG_CHARS)
            out.append(h("span", {"class": "tok-" + kind}, _highlighted(p[1])))
    return out


def code_block(tok, on_copy):
    """A code block: its language, a copy button, the code (highlighted when Prism knows it)."""
    lang = _language(tok.info) if tok.type == "fence" else ""
    body = _highlighted(tok.code) if isinstance(tok.code, list) else tok.content
    return h("div", {"class": "code-block"}, [
        h("div", {"class": "code-bar"}, [
            h("span", {"class": "code-lang"}, lang or "code"),
            on_copy and h("button", {"type": "button", "class": "secondary small copy",
                                     "aria-label": "Copy code", "onclick": on_copy(tok.content)}, "Copy")]),
        h("pre", {}, h("code", {"class": "language-" + lang} if lang else {}, body))])


def _image(tok):
    alt = "".join(t.content for t in (nest(tok.inline) if tok.inline else ()))
    src = (tok.attr("src") or "").strip()
    if _images[0] and image_origin(src) in _images[0]:
        return h("img", {"class": "md-img", "src": src, "alt": alt, "referrerpolicy": "no-referrer",
                         "loading": "lazy"})
    href = safe_href(src)
    label = "[image" + (": " + alt if alt else "") + "]"
    if href is None:
        return h("span", {"class": "md-image"}, label)
    return h("a", {"class": "md-image", "href": href, "rel": "noopener noreferrer", "target": "_blank",
                   "title": "Image not loaded: open it in a new tab"}, label)


def inline(tokens):
    """Inline tokens (text, emphasis, code, links, breaks) as nodes."""
    out = []
    for t in tokens:
        kind = t.type
        if kind in ("text", "html_inline"):
            out.append(t.content)
        elif kind == "code_inline":
            out.append(h("code", {}, t.content))
        elif kind == "softbreak":
            out.append("\n")
        elif kind == "hardbreak":
            out.append(h("br"))
        elif kind == "image":
            out.append(_image(t))
        elif kind == "link":
            href = safe_href(t.attr("href"))
            kids = inline(t.body)
            out.append(h("a", {"href": href, "rel": "noopener noreferrer", "target": "_blank"}, kids)
                       if href else h("span", {"class": "md-link"}, kids))
        elif kind in BLOCK:
            out.append(h(BLOCK[kind], {}, inline(t.body)))
        else:
            out.append(inline(t.body))
    return out


def _task(item):
    """(checked, item) for a list item written "[ ] …" / "[x] …", its marker removed; else None."""
    para = item.body[0] if item.body and item.body[0].type == "paragraph" else None
    first = para.body[0] if para and para.body and para.body[0].type == "inline" else None
    kids = nest(first.inline) if first and first.inline else ()
    if not kids or kids[0].type != "text" or kids[0].content[:4].lower() not in ("[ ] ", "[x] "):
        return None
    return kids[0].content[1] != " ", kids


def _list_item(t, on_copy):
    task = _task(t)
    if task is None:
        return h("li", {}, blocks(t.body, on_copy))
    checked, kids = task
    kids[0].content = kids[0].content[4:]
    box = h("input", {"type": "checkbox", "disabled": True, "checked": checked, "aria-label": "done" if checked
                      else "not done"})
    return h("li", {"class": "task"}, [box, " ", inline(kids)] + blocks(t.body[1:], on_copy))


def _cell(t):
    align = ALIGN.get((t.attr("style") or "").replace(" ", ""))
    return h(t.type, {"class": "align-" + align} if align else {}, blocks(t.body, None))


def block(t, on_copy):
    kind = t.type
    if kind == "inline":
        return inline(nest(t.inline)) if t.inline else t.content
    if kind in ("fence", "code_block"):
        return code_block(t, on_copy)
    if kind == "html_block":
        return h("p", {}, t.content)
    if kind == "hr":
        return h("hr")
    if kind == "heading":
        return h(t.tag if t.tag in HEADINGS else "h6", {}, blocks(t.body, on_copy))
    if kind == "paragraph" and t.hidden:
        return blocks(t.body, on_copy)            # a tight list's item: no <p>
    if kind == "list_item":
        return _list_item(t, on_copy)
    if kind in ("th", "td"):
        return _cell(t)
    if kind == "ordered_list":
        start = str(t.attr("start") or "")
        return h("ol", {"start": start} if start.isdigit() else {}, blocks(t.body, on_copy))
    if kind == "table":
        return h("div", {"class": "table-wrap"}, h("table", {}, blocks(t.body, on_copy)))
    if kind in BLOCK:
        return h(BLOCK[kind], {}, blocks(t.body, on_copy))
    return blocks(t.body, on_copy)


def blocks(tokens, on_copy):
    return [block(t, on_copy) for t in tokens]


def view(text, on_copy=None):
    """text as Markdown: a div.markdown of nodes (plain text when no parser is loaded).
    on_copy(code) -> the message a code block's Copy button dispatches (None: no button)."""
    raw = parse(text or "")
    if raw is None:
        return h("div", {"class": "body"}, text)
    return h("div", {"class": "body markdown"}, blocks(nest(raw), on_copy))


# ---------------------------------------------------------------- streaming

def _fence(line):
    """The fence a line opens or closes (``` or ~~~, up to three spaces in), else None."""
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3:
        return None
    for mark in ("```", "~~~"):
        if stripped.startswith(mark):
            return mark
    return None


def _item_line(line):
    """The line starts a list item ("- a", "* a", "+ a", "1. a", "1) a"; up to three spaces in)."""
    s = line.lstrip(" ")
    if len(line) - len(s) > 3 or not s:
        return False
    if s[0] in "-*+":
        return len(s) == 1 or s[1] in " \t"
    digits = 0
    while digits < len(s) and digits < 10 and s[digits].isdigit():
        digits += 1
    return 0 < digits < 10 and s[digits:digits + 1] in (".", ")") and s[digits + 1:digits + 2] in ("", " ", "\t")


def chunks(text):
    """text cut at blank lines outside fenced code, where the next line does not continue a
    block (indented) nor a list (a loose list's next item): Markdown pieces that parse the
    same alone. Only the last one grows while a reply streams, so only it is parsed and drawn
    again."""
    out, cur, fence, blank, listing = [], [], None, False, False
    for line in text.split("\n"):
        mark = _fence(line)
        top = fence is None and bool(line.strip()) and line[:1] not in (" ", "\t")
        item = top and _item_line(line)
        if top and blank and cur and not (item and listing):
            out.append("\n".join(cur))
            cur = []
        if top:
            listing = item              # the piece so far ends in a list (indented lines continue it)
        if mark is not None and (fence is None or mark == fence):
            fence = mark if fence is None else None
        cur.append(line)
        blank = fence is None and not line.strip()
    if cur:
        out.append("\n".join(cur))
    return out


def _piece(text, on_copy):
    raw = parse(text)
    return h("div", {"class": "md-piece"}, blocks(nest(raw), on_copy) if raw is not None else text)


def streaming(text, on_copy=None):
    """A reply as it streams: its settled pieces (chunks) are memos, so a token re-parses and
    redraws only the last piece, however long the reply already is. The stored message is
    drawn whole by `view` (one parse) when it arrives."""
    if not available():
        return h("div", {"class": "body"}, text)
    pieces = chunks(text or "")
    return h("div", {"class": "body markdown"}, [memo(_piece, c, on_copy, key=str(i)) for i, c in enumerate(pieces)])

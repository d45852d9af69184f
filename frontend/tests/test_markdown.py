"""markdown.py: model text parsed by the real markdown-it (+ Prism), drawn as the page's own
virtual nodes; hostile input stays inert. Under CPython the parser is the browser's bundle run
by Node (tests/unit/test_frontend_pages.py); under MicroPython-WASM run.mjs loads that bundle."""

import markdown
import vdom
from runtime import message
from kit import find, find_all, walk, text_of

CopyCode = message("CopyCode", "text")

# the only tags and attributes the mapping may produce: anything else came from the model
TAGS = {"div", "p", "span", "a", "em", "strong", "s", "code", "pre", "ul", "ol", "li", "blockquote", "hr", "br",
        "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "input", "button"}
ATTRS = {"class", "href", "rel", "target", "title", "start", "type", "disabled", "checked", "aria-label", "onclick"}


def md(text):
    return markdown.view(text, CopyCode)


def inert(tree):
    """Only our tags and attributes; every link http(s)/mailto with noopener noreferrer."""
    for n in walk(tree):
        if n.tag is None:
            continue
        assert n.tag in TAGS, n.tag
        assert set(n.attrs) <= ATTRS, n.attrs
        if n.tag == "a":
            href = n.attrs["href"].lower()
            assert href.startswith("http://") or href.startswith("https://") or href.startswith("mailto:"), href
            assert n.attrs["rel"] == "noopener noreferrer"


def test_paragraphs_emphasis_and_inline_code():
    tree = md("Hello **bold** and *it* and `x = 1` and ~~gone~~.")
    inert(tree)
    assert text_of(find(tree, "strong")) == "bold"
    assert text_of(find(tree, "em")) == "it"
    assert text_of(find(tree, "code")) == "x = 1"
    assert text_of(find(tree, "s")) == "gone"
    assert "**" not in text_of(tree) and "`" not in text_of(tree)


def test_headings_lists_and_quotes():
    tree = md("## Title\n\n- one\n- two\n\n3. three\n4. four\n\n> quoted")
    inert(tree)
    assert text_of(find(tree, "h2")) == "Title"
    assert [text_of(li) for li in find_all(find(tree, "ul"), "li")] == ["one", "two"]
    assert find(tree, "ol").attrs.get("start") == "3"
    assert find_all(find(tree, "ul"), "p") == []          # a tight list has no paragraphs
    assert text_of(find(tree, "blockquote")) == "quoted"


def test_fenced_code_is_highlighted_with_a_copy_button():
    code = "def f(x):\n    return x + 1\n"
    tree = md("Look:\n\n```python\n" + code + "```\n")
    inert(tree)
    block = find(tree, "div", **{"class": "code-block"})
    assert text_of(find(block, "code")) == code
    assert find(block, "code").attrs["class"] == "language-python"
    assert find_all(block, "span", **{"class": "tok-keyword"}), "Prism marked the keywords"
    assert find(block, "button", text="Copy").attrs["onclick"] == CopyCode(code)
    assert text_of(find(block, "span", **{"class": "code-lang"})) == "python"


def test_unknown_language_and_indented_code_stay_plain_text():
    tree = md("```nosuchlang\n<b>x</b>\n```\n\n    indented <i>")
    inert(tree)
    codes = find_all(tree, "code")
    assert [text_of(c) for c in codes] == ["<b>x</b>\n", "indented <i>\n"]
    assert not find_all(tree, "b") and not find_all(tree, "i")


def test_tables_with_alignment():
    tree = md("| a | b |\n|:--|--:|\n| 1 | 2 |\n")
    inert(tree)
    assert [text_of(x) for x in find_all(tree, "th")] == ["a", "b"]
    assert [x.attrs.get("class") for x in find_all(tree, "td")] == ["align-left", "align-right"]


def test_task_lists():
    tree = md("- [x] done\n- [ ] todo\n- plain")
    inert(tree)
    boxes = find_all(tree, "input")
    assert [b.attrs["checked"] for b in boxes] == [True, False]
    assert all(b.attrs["disabled"] for b in boxes)
    assert [text_of(li) for li in find_all(tree, "li")] == [" done", " todo", "plain"]


def test_links_keep_only_http_and_mailto():
    tree = md("[ok](https://example.org/a) [mail](mailto:a@example.org) [bad](javascript:alert(1)) "
              "[data](data:text/html;base64,PHNjcmlwdD4=) [vb](vbscript:x) [rel](/admin) "
              "[caps](JaVaScRiPt:alert(1)) <https://auto.example.org>")
    inert(tree)
    links = find_all(tree, "a")
    assert [a.attrs["href"] for a in links] == ["https://example.org/a", "mailto:a@example.org",
                                               "https://auto.example.org"]
    assert all(a.attrs["target"] == "_blank" for a in links)
    assert "bad" in text_of(tree) and "data" in text_of(tree)      # their text stays, not as links


def test_raw_html_and_script_stay_text():
    hostile = ('<script>alert(1)</script>\n\n<img src=x onerror="alert(1)">\n\n'
               'inline <b onmouseover="alert(1)">x</b> <iframe src="https://evil.example"></iframe>\n\n'
               '<a href="javascript:alert(1)">click</a> &lt;script&gt; &#60;script&#62;')
    tree = md(hostile)
    inert(tree)
    for tag in ("script", "img", "iframe", "b"):
        assert not find_all(tree, tag)
    assert "<script>alert(1)</script>" in text_of(tree)
    assert "<script>" in text_of(tree).replace("&lt;", "<")       # entities decode to text, never markup


def test_images_are_not_loaded():
    tree = md("![a cat](https://example.org/cat.png) ![x](javascript:alert(1)) ![y](data:image/png;base64,AAAA)")
    inert(tree)
    assert not find_all(tree, "img")
    links = find_all(tree, "a")
    assert [a.attrs["href"] for a in links] == ["https://example.org/cat.png"]
    assert "[image: a cat]" in text_of(tree)


HOSTILE_IMAGES = ("![x](javascript:alert(1)) ![y](data:image/png;base64,AAAA) ![z](vbscript:msgbox) "
                  "![u](https://images.example.org@evil.example/a.png) ![v](https://evil.example/images.example.org) "
                  "![w](HTTPS://evil.example) ![b](https://images.example.org.evil.example/a.png) "
                  "![p](//images.example.org/a.png) ![f](file:///etc/passwd) "
                  "![e](&#106;avascript:alert(1)) ![s](<https://images.example.org\\@evil.example/a.png>)")


def test_images_load_only_from_the_allowed_origins():
    markdown.allow_images(["https://images.example.org", "http://127.0.0.1:8080"])
    try:
        tree = md("![a cat](https://images.example.org/cat.png \"t\") ![b](HTTP://127.0.0.1:8080/b.png?x=1) "
                  "![c](https://other.example/c.png) " + HOSTILE_IMAGES)
        imgs = find_all(tree, "img")
        assert [i.attrs["src"] for i in imgs] == ["https://images.example.org/cat.png",
                                                  "HTTP://127.0.0.1:8080/b.png?x=1"]
        for i in imgs:
            assert set(i.attrs) == {"class", "src", "alt", "referrerpolicy", "loading"}
            assert i.attrs["referrerpolicy"] == "no-referrer" and i.attrs["loading"] == "lazy"
        assert imgs[0].attrs["alt"] == "a cat"
        # an image from elsewhere is a link to open by hand; hostile ones not even that
        hrefs = [a.attrs["href"] for a in find_all(tree, "a")]
        assert hrefs[:5] == ["https://other.example/c.png", "https://images.example.org@evil.example/a.png",
                             "https://evil.example/images.example.org", "HTTPS://evil.example",
                             "https://images.example.org.evil.example/a.png"]
        assert all(h.lower().startswith("http") for h in hrefs) and len(hrefs) <= 6
        for n in walk(tree):
            if n.tag not in (None, "img"):
                assert n.tag in TAGS and set(n.attrs) <= ATTRS, (n.tag, n.attrs)
    finally:
        markdown.allow_images(())
    assert not find_all(md("![a cat](https://images.example.org/cat.png)"), "img")


def test_image_origin():
    o = markdown.image_origin
    assert o("https://Images.Example.org/a.png?q#f") == "https://images.example.org"
    assert o("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    for bad in ("javascript:alert(1)", "data:image/png;base64,AAAA", "//images.example.org/a", "https://",
                "https://a@b.example/", "https://b.example\\@a/", "https://a.example/\nx", "ftp://a.example/",
                None, ""):
        assert o(bad) is None, bad


def test_the_image_origins_are_part_of_a_messages_memo_state():
    before = markdown.state()
    markdown.allow_images(["https://images.example.org"])
    try:
        assert markdown.state() != before
    finally:
        markdown.allow_images(())
    assert markdown.state() != before     # changed again: messages are drawn anew, not from the memo


def test_event_handler_attributes_never_come_through():
    tree = md('[x](https://example.org "title\\" onclick=\\"alert(1)") {onclick=alert(1)}')
    inert(tree)
    for n in walk(tree):
        if n.tag is not None:
            assert "onclick" not in n.attrs or n.tag == "button"


def test_a_partial_stream_renders_and_no_parser_means_plain_text():
    tree = md("Some **bold and ```py\nprint(")
    inert(tree)
    assert "print(" in text_of(tree)
    saved = markdown._parser[0]
    markdown._parser[0] = lambda text: None
    try:
        plain = markdown.view("**x**")
        assert text_of(plain) == "**x**"
    finally:
        markdown._parser[0] = saved


def test_safe_href():
    assert markdown.safe_href(" https://a.example ") == "https://a.example"
    assert markdown.safe_href("http:") is None
    assert markdown.safe_href("javascript:alert(1)") is None
    assert markdown.safe_href(None) is None


def test_chunks_cut_at_blank_lines_outside_code():
    text = "# T\n\npara one\nstill one\n\n```py\na = 1\n\nb = 2\n```\n\n- x\n\n  continued\n\nlast"
    assert markdown.chunks(text) == ["# T\n", "para one\nstill one\n", "```py\na = 1\n\nb = 2\n```\n",
                                     "- x\n\n  continued\n", "last"]
    assert "".join(c + "\n" for c in markdown.chunks(text))[:-1] == text


def test_a_loose_list_streams_as_one_list():
    text = "Steps:\n\n- one\n\n- two\n\n  more of two\n\n- three\n\n1. a\n\n2. b\n\nAfter."
    assert markdown.chunks(text) == ["Steps:\n", "- one\n\n- two\n\n  more of two\n\n- three\n\n1. a\n\n2. b\n",
                                     "After."]
    tree = markdown.streaming(text, CopyCode)
    for c in tree.children:
        vdom._resolve(c)
    lists = [n for n in walk(tree) if n.tag in ("ul", "ol")]
    stored = [n for n in walk(md(text)) if n.tag in ("ul", "ol")]
    assert [(n.tag, len(find_all(n, "li"))) for n in lists] == [(n.tag, len(find_all(n, "li"))) for n in stored] == [
        ("ul", 3), ("ol", 2)]
    assert [markdown._item_line(x) for x in ("- a", "* a", "+ a", "12. a", "3) a", "-", "   - a")] == [True] * 7
    assert [markdown._item_line(x) for x in ("-a", "--- ", "1.a", "    - a", "a. b", "1234567890. a", "")] == [
        False] * 7


def test_streaming_redraws_only_the_last_piece():
    first = markdown.streaming("Intro **x**\n\n```py\nprint(1)\n```\n\nTail", CopyCode)
    vdom._resolve(first)
    for c in first.children:
        vdom._resolve(c)
    calls = []
    saved = markdown._parser[0]

    def counting(text):               # the real parser (installed or the page's), counted
        calls.append(text)
        markdown._parser[0] = saved
        try:
            return markdown.parse(text)
        finally:
            markdown._parser[0] = counting
    markdown._parser[0] = counting
    try:
        second = markdown.streaming("Intro **x**\n\n```py\nprint(1)\n```\n\nTail grows", CopyCode)
        for old, new in zip(first.children, second.children):
            vdom._resolve(new, old)
    finally:
        markdown._parser[0] = saved
    assert calls == ["Tail grows"]
    inert(second)
    assert text_of(find(second, "strong")) == "x"
    assert find(second, "button", text="Copy").attrs["onclick"] == CopyCode("print(1)\n")

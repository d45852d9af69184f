"""first_page/html.py: the SPA's virtual nodes written as HTML, as Applier.build would make them.
Data is escaped wherever it lands; what a view could only mean as code (script, style, odd names)
is refused, never written; handlers are left out."""

from __future__ import annotations

import html.parser
import pathlib

import pytest

from agentstead.first_page import spa
from agentstead.first_page.html import Unwritable, to_html

SRC = pathlib.Path(__file__).resolve().parents[2] / "frontend" / "src"
SPA = spa.load(SRC)
h, text, memo = SPA.vdom.h, SPA.vdom.text, SPA.vdom.memo

HOSTILE = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "' onmouseover='alert(1)",
           "</textarea><script>alert(1)</script>", "&lt;script&gt;", "<!--", "]]><svg onload=alert(1)>",
           "javascript:alert(1)", "\u2028</p>"]


def write(node) -> str:
    return to_html(node, SPA.vdom.rendered)


class Parsed(html.parser.HTMLParser):
    """What a browser's tokenizer would see: tags with their attributes, and text."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.parametrize("bad", HOSTILE)
def test_data_stays_data_in_text_and_attributes(bad):
    markup = write(h("div", {"title": bad, "data-x": bad}, [h("p", {}, bad), h("textarea", {"value": bad}),
                                                            h("a", {"href": "/x", "aria-label": bad}, bad)]))
    parsed = Parsed(markup)
    assert [t for t, _ in parsed.tags] == ["div", "p", "textarea", "a"]
    assert parsed.tags[0][1] == {"title": bad, "data-x": bad}
    assert parsed.tags[3][1] == {"href": "/x", "aria-label": bad}
    assert "".join(parsed.text) == bad + "\n" + bad + bad     # the textarea's newline: see below


def test_the_textarea_and_pre_keep_a_leading_newline():
    markup = write(h("div", {}, [h("textarea", {"value": "\nfirst"}), h("pre", {}, "\nsecond")]))
    assert markup == "<div><textarea>\n\nfirst</textarea><pre>\n\nsecond</pre></div>"


def test_handlers_none_and_false_are_left_out_true_is_bare():
    markup = write(h("button", {"onclick": lambda e: None, "disabled": True, "hidden": False, "title": None,
                                "type": "button"}, "Go"))
    assert markup == '<button disabled type="button">Go</button>'


def test_void_elements_have_no_end_tag_and_svg_keeps_its_own():
    markup = write(h("div", {}, [h("input", {"value": "a", "checked": True}), h("br"),
                                 h("svg", {"viewBox": "0 0 2 2"}, [h("path", {"d": "M0 0"})])]))
    assert markup == ('<div><input value="a" checked><br>'
                      '<svg viewBox="0 0 2 2"><path d="M0 0"></path></svg></div>')


def test_a_selects_value_marks_its_option():
    markup = write(h("select", {"value": "b"}, [h("option", {"value": "a"}, "A"), h("option", {"value": "b"}, "B")]))
    assert markup == '<select><option value="a">A</option><option value="b" selected>B</option></select>'


def test_memos_are_rendered():
    markup = write(h("ul", {}, [memo(lambda n: h("li", {}, str(n)), 1, key="one")]))
    assert markup == "<ul><li>1</li></ul>"


@pytest.mark.parametrize("node", [
    lambda: h("script", {}, "alert(1)"), lambda: h("STYLE", {}, "x"), lambda: h("div", {"a b": "x"}),
    lambda: h("div", {'x"': "y"}), lambda: h("img src=x", {}), lambda: h("div", {}, [h("x><script", {})]),
], ids=["script", "style", "space-in-name", "quote-in-name", "tag-with-space", "nested"])
def test_what_could_only_be_code_is_refused(node):
    write(h("div", {"style": "color: red", "class": "x"}, "fine"))    # names seen before change nothing
    with pytest.raises(Unwritable):
        write(node())

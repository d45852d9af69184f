"""Branch conditions and templates: references and literals only, never eval."""

import pytest

from agentstead.workflows import expressions, templates
from agentstead.workflows.expressions import ExpressionError
from agentstead.workflows.templates import TemplateError

CTX = {"input": {"topic": "owls", "count": 3, "strict": True},
       "steps": {"check": {"output": "ok"}, "score": {"output": {"value": 0.8, "tags": ["a", "b"]}},
                 "gate": {"output": {"approved": True, "comment": ""}}}}


@pytest.mark.parametrize("source,value", [
    ('steps.check.output == "ok"', True),
    ('steps.check.output != "ok"', False),
    ("steps.score.output.value >= 0.5 and input.count < 5", True),
    ("not input.strict or input.count > 10", False),
    ('input.topic in ["owls", "bats"]', True),
    ('"a" in steps.score.output.tags', True),
    ('"z" not in steps.score.output.tags', True),
    ("steps.gate.output.approved == true", True),
    ("steps.gate.output.approved", True),
    ("0 < input.count <= 3", True),
    ("input.count == -3", False),
    ("input.missing == null", True),
    ("(input.count > 1) and (input.topic == 'owls')", True),
])
def test_conditions(source, value):
    assert expressions.evaluate(source, CTX) is value


def test_references_are_listed():
    assert expressions.references('steps.a.output.x == input.y or steps.b.output') == [
        ("steps", "a", "output", "x"), ("input", "y"), ("steps", "b", "output")]


@pytest.mark.parametrize("source,fragment", [
    ("__import__('os').system('id')", "function calls"),
    ("len(input.topic) > 3", "function calls"),
    ("input.topic.upper()", "function calls"),
    ("steps.check.output.__class__", "not a plain name"),
    ("input.__class__", "not a plain name"),
    ("steps.check._private", "not a plain name"),
    ("(1).real == 1", "attribute access"),
    ('"x".join == 1', "attribute access"),
    ("steps.score.output['value'] > 1", "indexing"),
    ("input.count + 1 > 2", "arithmetic"),
    ("lambda: 1", "lambdas"),
    ("os == 1", "unknown name 'os'"),
    ("steps.check == 1", "steps.<name>.output"),
    ("input.topic.length == 1", "input.<name>"),
    ("env.HOME == 1", "must start with input. or steps."),
    ("input.count is None", "Is comparison"),
    ("[x for x in input]", "ListComp"),
    ("input.count ==", "not a condition"),
    ("", "give a condition"),
    ("1 == 1 " * 300, "longer than"),
    ("[input.count] == [1]", "only hold literals"),
    ("b'x' == 1", "bytes"),
])
def test_everything_else_is_refused(source, fragment):
    with pytest.raises(ExpressionError, match=fragment):
        expressions.parse(source)


def test_errors_say_where():
    with pytest.raises(ExpressionError, match="at column 24: function calls"):
        expressions.parse('steps.check.output and len(input.topic)')


def test_evaluation_errors_are_expression_errors():
    with pytest.raises(ExpressionError, match="step 'nope' has not run"):
        expressions.evaluate("steps.nope.output == 1", CTX)
    with pytest.raises(ExpressionError, match="has no 'nope'"):
        expressions.evaluate("steps.score.output.nope == 1", CTX)
    with pytest.raises(ExpressionError, match="cannot evaluate"):
        expressions.evaluate('input.topic < 3', CTX)


def test_templates_render_references():
    text = templates.render("About {{ input.topic }} ({{input.count}}): {{ steps.score.output.tags }}", CTX)
    assert text == 'About owls (3): ["a", "b"]'
    assert templates.render("[{{ input.missing }}]", CTX) == "[]"
    args = {"n": "{{ input.count }}", "q": "more on {{ input.topic }}", "deep": [{"x": "{{ steps.check.output }}"}],
            "fixed": 7}
    assert templates.render_value(args, CTX) == {"n": 3, "q": "more on owls", "deep": [{"x": "ok"}], "fixed": 7}
    assert templates.references("{{ input.a }} and {{ steps.b.output.c }}") == [("input", "a"),
                                                                                 ("steps", "b", "output", "c")]


@pytest.mark.parametrize("template,fragment", [
    ("{{ input.topic | upper }}", "only a dotted reference"),
    ("{{ input.topic.__class__ }}", "not a plain name"),
    ("{{ }}", "empty"),
    ("hello {{ input.topic", "never closed"),
    ("{{ config.secret }}", "must start with input. or steps."),
    ("{{ steps.a }}", "steps.<name>.output"),
    ("{{ steps.a.output[0] }}", "not a plain name"),
])
def test_bad_templates(template, fragment):
    with pytest.raises(TemplateError, match=fragment):
        templates.parse(template)

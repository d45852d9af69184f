"""The condition language of `branch.when`: a whitelist over Python's AST, never eval.

Allowed: comparisons (== != < <= > >=, in, not in), and/or/not, string,
number and boolean literals (`true`/`false`/`null` as well as Python's
spellings), lists of literals, and references (`input.x`,
`steps.x.output[.key...]`). Everything else (calls, indexing, arithmetic,
attribute access on anything but a reference, names starting with `_`) is
refused when the definition is saved, with the column it starts at.
"""

from __future__ import annotations

import ast
import dataclasses
import operator
from typing import Any, Mapping

from .references import Reference, UnresolvedReference, resolve, shape_problem

MAX_LENGTH = 1000

_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
_LITERAL_NAMES = {"true": True, "false": False, "null": None}
_LITERAL_TYPES = (str, int, float, bool, type(None))
# Clear words for what people most often try, instead of an AST class name.
_REFUSED = {ast.Call: "function calls are not allowed", ast.Subscript: "indexing is not allowed; use steps.x.output.key",
            ast.BinOp: "arithmetic is not allowed", ast.Lambda: "lambdas are not allowed",
            ast.NamedExpr: "assignment is not allowed", ast.IfExp: "conditional expressions are not allowed",
            ast.Starred: "unpacking is not allowed"}


class ExpressionError(ValueError):
    """The condition is not allowed or cannot be evaluated; the message says why and where."""


@dataclasses.dataclass(frozen=True)
class Condition:
    source: str
    tree: ast.expr
    references: tuple[Reference, ...]


def parse(source: str) -> Condition:
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("give a condition, e.g. steps.check.output == \"ok\"")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"condition longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        where = f"at column {exc.offset}: " if exc.offset else ""
        raise ExpressionError(f"{where}not a condition: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError("condition too deeply nested or malformed") from None
    refs: list[Reference] = []
    _check(tree.body, refs)
    return Condition(source, tree.body, tuple(refs))


def references(source: str) -> list[Reference]:
    return list(parse(source).references)


def evaluate(condition: Condition | str, ctx: Mapping[str, Any]) -> bool:
    if isinstance(condition, str):
        condition = parse(condition)
    try:
        return bool(_eval(condition.tree, ctx))
    except UnresolvedReference as exc:
        raise ExpressionError(str(exc)) from None
    except TypeError as exc:
        # e.g. "a" < 1, or `in` on a number: a data problem, reported as the condition failing.
        raise ExpressionError(f"cannot evaluate {condition.source!r}: {exc}") from None


def _fail(node: ast.AST, message: str):
    raise ExpressionError(f"at column {getattr(node, 'col_offset', 0) + 1}: {message}")


def _reference(node: ast.AST) -> Reference | None:
    """The dotted path of an Attribute chain on a bare name, or None if it is not one."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    names.append(node.id)
    return tuple(reversed(names))


def _check(node: ast.AST, refs: list[Reference]) -> None:
    if isinstance(node, ast.Constant):
        if type(node.value) not in _LITERAL_TYPES:
            _fail(node, f"{type(node.value).__name__} literals are not allowed")
        return
    if isinstance(node, (ast.Name, ast.Attribute)):
        ref = _reference(node)
        if ref is None:
            _fail(node, "attribute access is only allowed on input.<name> and steps.<name>.output")
        if len(ref) == 1 and ref[0] in _LITERAL_NAMES:
            return
        if len(ref) == 1:
            _fail(node, f"unknown name '{ref[0]}'; use input.<name>, steps.<name>.output, true, false or null")
        problem = shape_problem(ref)
        if problem:
            _fail(node, problem)
        refs.append(ref)
        return
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, refs)
        return
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Not):
            return _check(node.operand, refs)
        if isinstance(node.op, (ast.USub, ast.UAdd)) and isinstance(node.operand, ast.Constant) \
                and type(node.operand.value) in (int, float):
            return None  # a negative number literal
        _fail(node, "only `not` and a sign on a number are allowed as unary operators")
    if isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE:
                _fail(node, f"the {type(op).__name__} comparison is not allowed")
        for operand in [node.left, *node.comparators]:
            _check(operand, refs)
        return
    if isinstance(node, (ast.List, ast.Tuple)):
        for element in node.elts:
            if not (isinstance(element, ast.Constant) or isinstance(element, ast.UnaryOp)):
                _fail(element, "a list may only hold literals")
            _check(element, refs)
        return
    _fail(node, _REFUSED.get(type(node), f"{type(node).__name__} is not allowed in a condition"))


def _eval(node: ast.AST, ctx: Mapping[str, Any]) -> Any:
    # Only the node types _check admitted reach here.
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Name, ast.Attribute)):
        ref = _reference(node)
        assert ref is not None
        if len(ref) == 1:
            return _LITERAL_NAMES[ref[0]]
        return resolve(ref, ctx)
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, ctx) for v in node.values)  # short-circuits like `and`
        return any(_eval(v, ctx) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, ctx)
        return (not value) if isinstance(node.op, ast.Not) else (-value if isinstance(node.op, ast.USub) else value)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, ctx)
        for op, comparator in zip(node.ops, node.comparators):
            right = _eval(comparator, ctx)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, ctx) for e in node.elts]
    raise ExpressionError(f"{type(node).__name__} is not allowed in a condition")

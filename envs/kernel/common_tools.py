"""The tools every domain shares: arithmetic and the hand-off to a human agent."""

from __future__ import annotations

import ast
import operator
from typing import Any

from envs.kernel.tool import ToolError, tool

__all__ = ["calculate", "transfer_to_human_agents"]

_ALLOWED_CHARS = frozenset("0123456789+-*/(). ")
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
# The work of any expression is bounded: its length, how deeply it nests (every level of the
# syntax tree needs an operator or a parenthesis, so counting those bounds the depth the parser
# recurses to), the exponent of a power, and the size of every integer computed along the way
# (checked before a product or power is computed, so none is ever built).
_MAX_LENGTH = 1000
_MAX_OPERATORS = 200
_MAX_EXPONENT = 1000
_MAX_INT_BITS = 16384


def _binary(op: type[ast.operator], left: Any, right: Any) -> Any:
    """``left op right``, refusing a power or product whose result would be too large to compute."""
    if op is ast.Pow and isinstance(right, (int, float)):
        if abs(right) > _MAX_EXPONENT:
            raise ToolError("Exponent too large")
        if type(left) is int and type(right) is int and left.bit_length() * right > _MAX_INT_BITS:
            raise ToolError("Result too large")
    elif op is ast.Mult and type(left) is int and type(right) is int:
        if left.bit_length() + right.bit_length() > _MAX_INT_BITS:
            raise ToolError("Result too large")
    value = _BINARY[op](left, right)
    if type(value) is int and value.bit_length() > _MAX_INT_BITS:
        raise ToolError("Result too large")
    return value


def _children(node: ast.AST) -> list[ast.expr]:
    """The sub-expressions ``node`` evaluates, in Python's order; refuses anything but arithmetic."""
    if isinstance(node, ast.Constant):  # numbers, or ``...`` (which fails later as in Python)
        return []
    if isinstance(node, ast.Tuple):
        return list(node.elts)
    if isinstance(node, ast.Call):  # e.g. '2(3)': Python evaluates the callee and arguments, then fails
        return [node.func, *node.args]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return [node.operand]
    raise ToolError("Invalid expression")


def _evaluate(root: ast.expr) -> Any:
    """The value of an arithmetic syntax tree, evaluated with an explicit stack (no recursion)."""
    values: list[Any] = []
    stack: list[tuple[ast.AST, list[ast.expr] | None]] = [(root, None)]
    while stack:
        node, children = stack.pop()
        if children is None:  # first visit: evaluate the children first, left to right
            children = _children(node)
            stack.append((node, children))
            stack.extend((child, None) for child in reversed(children))
            continue
        args = values[len(values) - len(children) :]
        del values[len(values) - len(children) :]
        if isinstance(node, ast.Constant):
            values.append(node.value)
        elif isinstance(node, ast.Tuple):
            values.append(tuple(args))
        elif isinstance(node, ast.Call):
            raise ToolError(f"'{type(args[0]).__name__}' object is not callable")
        elif isinstance(node, ast.BinOp):
            values.append(_binary(type(node.op), args[0], args[1]))
        else:
            values.append(_UNARY[type(node.op)](args[0]))  # type: ignore[attr-defined]
    return values[0]


@tool("generic")
def calculate(state: Any, expression: str) -> str:
    """Evaluate an arithmetic expression and return the result rounded to two decimals.

    Args:
        expression: The expression, made of numbers, + - * /, parentheses and spaces, e.g. '(120 + 45) * 2'.
    """
    if not all(char in _ALLOWED_CHARS for char in expression):
        raise ToolError("Invalid characters in expression")
    if len(expression) > _MAX_LENGTH:
        raise ToolError("Expression too long")
    if sum(expression.count(c) for c in "+-*/(") > _MAX_OPERATORS:
        raise ToolError("Expression too complex")
    try:
        tree = ast.parse(expression.lstrip(" "), filename="<string>", mode="eval")
        return str(round(float(_evaluate(tree.body)), 2))
    except (SyntaxError, ArithmeticError, ValueError, TypeError, RecursionError, MemoryError) as exc:
        raise ToolError(str(exc)) from None


@tool("generic")
def transfer_to_human_agents(state: Any, summary: str) -> str:
    """Hand the conversation to a human agent, with a summary of the customer's issue. Use it only
    when the customer asks for a human, or when the policy and tools cannot resolve the request.

    Args:
        summary: A short summary of the customer's issue.
    """
    return "Transfer successful"

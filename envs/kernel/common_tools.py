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
_MAX_EXPONENT = 1000


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant):  # numbers, or ``...`` (which fails later as in Python)
        return node.value
    if isinstance(node, ast.Tuple):
        return tuple(_evaluate(item) for item in node.elts)
    if isinstance(node, ast.Call):  # e.g. '2(3)': Python evaluates the callee, then fails
        callee = _evaluate(node.func)
        for arg in node.args:
            _evaluate(arg)
        raise ToolError(f"'{type(callee).__name__}' object is not callable")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise ToolError("Exponent too large")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    raise ToolError("Invalid expression")


@tool("generic")
def calculate(db: Any, expression: str) -> str:
    """Evaluate an arithmetic expression and return the result rounded to two decimals.

    Args:
        expression: The expression, made of numbers, + - * /, parentheses and spaces, e.g. '(120 + 45) * 2'.
    """
    if not all(char in _ALLOWED_CHARS for char in expression):
        raise ToolError("Invalid characters in expression")
    try:
        tree = ast.parse(expression.lstrip(" "), filename="<string>", mode="eval")
        return str(round(float(_evaluate(tree)), 2))
    except (SyntaxError, ArithmeticError, ValueError, TypeError) as exc:
        raise ToolError(str(exc)) from None


@tool("generic")
def transfer_to_human_agents(db: Any, summary: str) -> str:
    """Hand the conversation to a human agent, with a summary of the customer's issue. Use it only
    when the customer asks for a human, or when the policy and tools cannot resolve the request.

    Args:
        summary: A short summary of the customer's issue.
    """
    return "Transfer successful"

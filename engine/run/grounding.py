"""The grounding check: every concrete fact an agent tells the user must have been seen before.

Facts are ids (tokens mixing letters and digits: ``HAT001``, ``#W2378156``, ``sara_doe_496``),
dates (``2024-05-20``, ``May 20, 2024``, ``20 May``, ``05/20/2024``) and numbers (amounts, counts:
``$1,234.50``, ``3``). An agent message's fact is *grounded* when the same fact, normalised (no
currency sign or thousands separator, ``1234.50 == 1234.5``, every date form to month-day and year),
appeared earlier in the system prompt (the policy), a user message or a tool output; a
``calculate`` result is a tool output, so a computed total is grounded once the agent computed it.
Deterministic text analysis, no model; it does not judge whether a statement is *right*.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["facts", "ungrounded"]

_MONTH_NAMES = (
    "jan january", "feb february", "mar march", "apr april", "may", "jun june", "jul july",
    "aug august", "sep sept september", "oct october", "nov november", "dec december",
)  # fmt: skip
_MONTHS = {m: i + 1 for i, names in enumerate(_MONTH_NAMES) for m in names.split()}
_YEAR = r"\b(?:,?\s+(?P<y>\d{4})\b)?"
_MONTH = r"(?P<mon>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DATE_PATTERNS = (
    re.compile(r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"),
    re.compile(r"\b(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})\b"),
    re.compile(r"\b" + _MONTH + r"\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?" + _YEAR, re.IGNORECASE),
    re.compile(r"\b(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + _YEAR, re.IGNORECASE),
)
# Times and ordinals are not facts of their own ("10:00", "5pm", "2nd").
_NOT_FACTS = re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?\b|\b\d{1,2}\s?(?:am|pm)\b|\b\d+(?:st|nd|rd|th)\b", re.IGNORECASE)
_ID = re.compile(r"#?\b(?=[A-Za-z0-9_]*[A-Za-z])(?=[A-Za-z0-9_]*\d)[A-Za-z0-9_]{3,}\b")
_NUMBER = re.compile(r"(?<![\w.])-?\$?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.])-?\$?\d+(?:\.\d+)?(?![\w])")


def _number(text: str) -> str | None:
    try:
        value = Decimal(text.replace("$", "").replace(",", ""))
    except InvalidOperation:
        return None
    return format(value.normalize(), "f")


def facts(text: str) -> list[tuple[str, str]]:
    """The facts in ``text`` as (normalised key, span as written), in order of kind then position."""
    found: list[tuple[str, str]] = []
    spans: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in spans)

    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            if not free(*m.span()):
                continue
            month = int(m["m"]) if "m" in m.groupdict() and m["m"] else _MONTHS.get((m["mon"] or "").lower(), 0)
            day = int(m["d"])
            if not (1 <= month <= 12 and 1 <= day <= 31):
                continue
            spans.append(m.span())
            year = m["y"]
            found.append((f"date:{year}-{month:02d}-{day:02d}" if year else f"date:{month:02d}-{day:02d}", m[0]))
    for m in _NOT_FACTS.finditer(text):
        spans.append(m.span())
    for m in _ID.finditer(text):
        if free(*m.span()):
            spans.append(m.span())
            found.append((f"id:{m[0].lstrip('#').lower()}", m[0]))
    for m in _NUMBER.finditer(text):
        if free(*m.span()):
            value = _number(m[0])
            if value is not None:
                found.append((f"num:{value.lstrip('-')}", m[0]))
    return found


def _keys(text: str) -> Iterable[str]:
    for key, _span in facts(text):
        yield key
        if key.startswith("date:") and key.count("-") == 2:
            yield "date:" + key.split("-", 1)[1]  # a full date also grounds its month-day form


def ungrounded(messages: Sequence[dict[str, Any]]) -> list[str]:
    """Spans of agent messages to the user whose facts appeared in no earlier source message."""
    seen: set[str] = set()
    flagged: list[str] = []
    for message in messages:
        content = message.get("content") or ""
        if not isinstance(content, str):
            continue
        if message.get("role") == "assistant":
            for key, span in facts(content):
                if key.startswith("date:") and key.count("-") == 2 and "date:" + key.split("-", 1)[1] in seen:
                    continue  # a year the user left out ("May 20") is not an invented fact
                if key not in seen and span not in flagged:
                    flagged.append(span)
            # the agent's own earlier words are not a source: a repeated invention stays one flag
        else:  # system prompt, user messages, tool outputs (calculate results included)
            seen.update(_keys(content))
    return flagged

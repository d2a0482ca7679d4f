"""Integrity checks both domains' checkers share: a user's links to its records, payment-method keys."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["check_payment_key", "check_user_links"]


def check_user_links(
    problems: list[str], where: str, uid: str, ids: Sequence[str], records: Mapping[str, Any], noun: str
) -> None:
    """Each id a user lists (its reservations, its orders) exists once and belongs to that user."""
    if len(set(ids)) != len(ids):
        article = "an" if noun[0] in "aeiou" else "a"
        problems.append(f"{where}: {article} {noun} id is listed twice")
    for rid in ids:
        record = records.get(rid)
        if record is None:
            problems.append(f"{where}: {noun} {rid} does not exist")
        elif record.user_id != uid:
            problems.append(f"{where}: {noun} {rid} belongs to {record.user_id}")


def check_payment_key(problems: list[str], where: str, pid: str, method: Any, pattern: re.Pattern[str]) -> None:
    """A payment method is stored under its own id, shaped ``<source>_<7 digits>``."""
    kind = type(method).__struct_config__.tag
    if method.id != pid or not pattern.match(pid) or not pid.startswith(f"{kind}_"):
        problems.append(f"{where}: payment method key {pid} does not match {kind} {method.id}")

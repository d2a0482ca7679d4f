"""The library DB: members and books, as msgspec Structs."""

from __future__ import annotations

from msgspec import Struct

__all__ = ["Book", "LibraryDB", "Member"]

MAX_LOANS = 3
"""Books a member may hold at once."""


class Member(Struct, kw_only=True):
    user_id: str
    name: str
    loans: list[str]
    fines: int


class Book(Struct, kw_only=True):
    book_id: str
    title: str
    author: str
    year: int
    borrower: str | None


class LibraryDB(Struct, kw_only=True):
    users: dict[str, Member]
    books: dict[str, Book]

"""The library's tools: look up members and books, borrow and return."""

from __future__ import annotations

from envs.kernel import BaseDB, Index, State, ToolError, tool
from tests.plugins.library.schema import MAX_LOANS, Book, Member

__all__ = ["TOOLS"]


def _by_author(base: BaseDB) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for book_id, book in base.tables["books"].items():
        index.setdefault(book.author.casefold(), []).append(book_id)
    return index


BY_AUTHOR = Index("library.by_author", _by_author)


def _member(state: State, user_id: str) -> Member:
    member = state.get("users", user_id)
    if member is None:
        raise ToolError("Member not found")
    return member


@tool("read")
def get_member_details(state: State, user_id: str) -> Member:
    """Look up a member: name, books on loan and unpaid fines.

    Args:
        user_id: The member id, e.g. 'ada_7'.
    """
    return _member(state, user_id)


@tool("read")
def get_book_details(state: State, book_id: str) -> Book:
    """Look up a book: title, author, year and who has it.

    Args:
        book_id: The book id, e.g. 'B0001'.
    """
    book = state.get("books", book_id)
    if book is None:
        raise ToolError("Book not found")
    return book


@tool("read")
def search_books_by_author(state: State, author: str) -> list[Book]:
    """Every book by an author, in catalogue order.

    Args:
        author: The author's full name, e.g. 'Mary Shelley'.
    """
    return [state.get("books", b) for b in BY_AUTHOR.of(state.base).get(author.strip().casefold(), ())]


@tool("write")
def borrow_book(state: State, user_id: str, book_id: str) -> Book:
    """Lend a book to a member.

    Args:
        user_id: The member id.
        book_id: The id of the book to lend.
    """
    member = _member(state, user_id)
    book = state.get("books", book_id)
    if book is None:
        raise ToolError("Book not found")
    if book.borrower is not None:
        raise ToolError("Book is on loan")
    if len(member.loans) >= MAX_LOANS:
        raise ToolError("Member holds the most books allowed")
    book = state.mut("books", book_id)
    book.borrower = user_id
    state.mut("users", user_id).loans.append(book_id)
    return book


@tool("write")
def return_book(state: State, user_id: str, book_id: str) -> Book:
    """Take back a book a member has on loan.

    Args:
        user_id: The member id.
        book_id: The id of the book returned.
    """
    member = _member(state, user_id)
    if book_id not in member.loans:
        raise ToolError("Member does not have this book")
    member = state.mut("users", user_id)
    member.loans.remove(book_id)
    book = state.mut("books", book_id)
    book.borrower = None
    return book


TOOLS = [get_member_details, get_book_details, search_books_by_author, borrow_book, return_book]

"""The library's task recipes and policy checks: ``SPEC`` is what ``writ tasks`` composes from.

``borrow_oldest``: borrow the oldest book by an author that is on the shelf (the agent searches the
author and compares years); ``return_titled``: return a book the member names by title (the agent
looks up each book on loan to find its id). ``refuse_fines``: a member who owes fines asks to borrow.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.tasks.model import Action, Intent
from engine.tasks.recipe import DomainSpec, Recipe, Reject, SampleContext, act, facts, read, unique_best
from engine.tasks.refusals import ACCEPT
from envs.kernel import Index, State
from tests.plugins.library.schema import MAX_LOANS

__all__ = ["SPEC"]

MEMBERS: Index[list[str]] = Index("library.members", lambda base: list(base.tables["users"]))


def _may_borrow(state: State, user_id: str) -> bool:
    member = state.get("users", user_id)
    return member.fines == 0 and len(member.loans) < MAX_LOANS


def _borrow_oldest(ctx: SampleContext) -> Intent | Reject:
    state = ctx.state
    if not _may_borrow(state, ctx.user_id):
        return Reject("borrow_oldest: member may not borrow")
    authors = sorted({b.author for b in ctx.base.tables["books"].values()})
    author = ctx.rng.choice(authors)
    shelf = [state.get("books", bid) for bid in ctx.base.tables["books"]]
    options = [(b.book_id, b.year, b) for b in shelf if b.author == author and b.borrower is None]
    picked = unique_best(f"oldest available book by {author}", "year", "min", options)
    if isinstance(picked, Reject):
        return Reject("borrow_oldest: no single oldest book")
    book, selection = picked
    want = f"Borrow the oldest book by {author} that is on the shelf now."
    return Intent(
        kind="borrow_oldest",
        rule="oldest_by_author",
        rule_text=want,
        actions=[act("borrow_book", user_id=ctx.user_id, book_id=book.book_id)],
        reads=[
            read("get_member_details", "fines and loans", user_id=ctx.user_id),
            read("search_books_by_author", "years and availability", author=author),
        ],
        facts=facts(wants=[want], if_fail=["If the agent says you cannot borrow, accept it."]),
        selections=[selection],
        target=book.book_id,
    )


def _return_titled(ctx: SampleContext) -> Intent | Reject:
    state = ctx.state
    member = state.get("users", ctx.user_id)
    if not member.loans:
        return Reject("return_titled: nothing on loan")
    book_id = ctx.rng.choice(member.loans)
    title = state.get("books", book_id).title
    want = f"Return your copy of '{title}'."
    return Intent(
        kind="return_titled",
        rule="given",
        rule_text=want,
        actions=[act("return_book", user_id=ctx.user_id, book_id=book_id)],
        reads=[
            read("get_member_details", "books on loan", user_id=ctx.user_id),
            *(read("get_book_details", "which loan has that title", book_id=b) for b in member.loans),
        ],
        facts=facts(wants=[want], withhold=["You do not know the book's id."]),
        target=book_id,
    )


def _refuse_fines(ctx: SampleContext) -> Intent | Reject:
    state = ctx.state
    member = state.get("users", ctx.user_id)
    free = [b for b in ctx.base.tables["books"].values() if state.get("books", b.book_id).borrower is None]
    if member.fines == 0 or len(member.loans) >= MAX_LOANS or not free:
        return Reject("refuse_fines: member owes nothing")
    book = ctx.rng.choice(free)
    want = f"Borrow '{book.title}' (book id {book.book_id})."
    return Intent(
        kind="refuse_fines",
        rule="given",
        rule_text=want,
        actions=[],
        reads=[read("get_member_details", "fines", user_id=ctx.user_id)],
        facts=facts(known=[f"The book id is {book.book_id}."], wants=[want], if_fail=[ACCEPT]),
        target=book.book_id,
        params={"forbidden": {"name": "borrow_book", "arguments": {"user_id": ctx.user_id, "book_id": book.book_id}}},
    )


def check(state: State, action: Action, intent: Intent, done: Sequence[Action]) -> str | None:
    """Why ``action`` breaks the desk policy, or None."""
    if action.name == "borrow_book" and not _may_borrow(state, action.arguments["user_id"]):
        return "policy: member may not borrow"
    return None


def _identity(state: State, user_id: str) -> list[str]:
    return [f"Your member id is {user_id}."]


SPEC = DomainSpec(
    domain="library",
    recipes=(
        Recipe("borrow_oldest", ("borrow_book",), _borrow_oldest),
        Recipe("return_titled", ("return_book",), _return_titled, follows=("borrow_oldest",)),
    ),
    policy=check,
    users=MEMBERS.of,
    identity=_identity,
    unknown="Book ids and publication years: the librarian looks them up.",
    refusals=(_refuse_fines,),
)

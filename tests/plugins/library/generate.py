"""A seeded library DB, and its integrity check."""

from __future__ import annotations

import random

from tests.plugins.library.schema import MAX_LOANS, Book, LibraryDB, Member

__all__ = ["check", "generate_db"]

AUTHORS = ("Mary Shelley", "Jane Austen", "Chinua Achebe", "Italo Calvino", "Ursula Le Guin", "Naguib Mahfouz")
WORDS = ("River", "Glass", "Winter", "Garden", "Stone", "Letters", "Harbour", "Lantern", "Orchard", "Mirror")
NAMES = ("ada", "bo", "chidi", "dara", "elif", "farah", "gabriel", "hana", "ivan", "jun")


def generate_db(users: int, seed: int) -> LibraryDB:
    """``users`` members and about four books per member, some on loan."""
    rng = random.Random(seed)
    members = {}
    for i in range(users):
        uid = f"{NAMES[i % len(NAMES)]}_{i}"
        members[uid] = Member(user_id=uid, name=uid.split("_")[0].title(), loans=[], fines=rng.choice((0, 0, 0, 5)))
    books = {}
    titles: set[str] = set()
    for i in range(4 * users):
        title = f"The {rng.choice(WORDS)} of {rng.choice(WORDS)}"
        while title in titles:
            title += " II"
        titles.add(title)
        bid = f"B{i:04d}"
        books[bid] = Book(book_id=bid, title=title, author=rng.choice(AUTHORS), year=rng.randint(1900, 2020),
                          borrower=None)  # fmt: skip
    for bid, book in books.items():
        uid = rng.choice(list(members))
        if rng.random() < 0.3 and len(members[uid].loans) < MAX_LOANS:
            book.borrower = uid
            members[uid].loans.append(bid)
    return LibraryDB(users=members, books=books)


def check(db: LibraryDB) -> list[str]:
    """Each loan is listed on both sides."""
    problems = []
    for uid, member in db.users.items():
        for bid in member.loans:
            if db.books.get(bid) is None or db.books[bid].borrower != uid:
                problems.append(f"users[{uid}]: book {bid} is not lent to them")
    for bid, book in db.books.items():
        if book.borrower is not None and bid not in db.users[book.borrower].loans:
            problems.append(f"books[{bid}]: its borrower does not list it")
    return problems

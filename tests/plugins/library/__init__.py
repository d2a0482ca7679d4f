"""A small lending-library domain kept entirely in the test tree: members borrow and return books.

It proves that a domain is a plug-in: its schema, tools, policy, DB generator, integrity check and
task recipes are all in this package, and the engine finds it only through the registry
(``WRIT_DOMAINS=library=tests.plugins.library``). Nothing in ``engine/`` or ``envs/`` names it.
"""

from pathlib import Path

from envs.kernel import Domain
from tests.plugins.library.schema import LibraryDB
from tests.plugins.library.tools import TOOLS

__all__ = ["DOMAIN"]


def _generate_db(users: int, seed: int) -> LibraryDB:
    from tests.plugins.library.generate import generate_db

    return generate_db(users=users, seed=seed)


def _check(db: LibraryDB) -> list[str]:
    from tests.plugins.library.generate import check

    return check(db)


DOMAIN = Domain(
    name="library",
    toolkit_name="LibraryTools",
    db_type=LibraryDB,
    tools=TOOLS,
    policy_path=Path(__file__).with_name("policy.md"),
    generate_db=_generate_db,
    integrity=_check,
    tasks="tests.plugins.library.recipes",
)

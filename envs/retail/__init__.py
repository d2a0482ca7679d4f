"""The retail domain: products, users and orders, compatible with tau2-bench's retail."""

from pathlib import Path

from envs.kernel import Domain
from envs.retail.schema import RetailDB
from envs.retail.tools import TOOLS

__all__ = ["DOMAIN"]


def _generate_db(users: int, seed: int) -> RetailDB:
    from envs.retail.generate import generate_db

    return generate_db(users=users, seed=seed)


def _check(db: RetailDB) -> list[str]:
    from envs.retail.integrity import check

    return check(db)


DOMAIN = Domain(
    name="retail",
    toolkit_name="RetailTools",
    db_type=RetailDB,
    tools=TOOLS,
    policy_path=Path(__file__).with_name("policy.md"),
    generate_db=_generate_db,
    integrity=_check,
    tasks="engine.tasks.domains.retail.recipes",
    reference_db_hash="b25c9cb211f5efcaee5dd646054a73c4a9f43f4f5acc32c10713cd9f9ac20e9c",  # tau2-bench's own db.json
)

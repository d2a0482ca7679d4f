"""The airline domain: flights, users and reservations, compatible with tau2-bench's airline."""

from pathlib import Path

from envs.airline.schema import AirlineDB
from envs.airline.tools import TOOLS
from envs.kernel import Domain

__all__ = ["DOMAIN"]


def _generate_db(users: int, seed: int) -> AirlineDB:
    from envs.airline.generate import generate_db

    return generate_db(users=users, seed=seed)


def _check(db: AirlineDB) -> list[str]:
    from envs.airline.integrity import check

    return check(db)


DOMAIN = Domain(
    name="airline",
    toolkit_name="AirlineTools",
    db_type=AirlineDB,
    tools=TOOLS,
    policy_path=Path(__file__).with_name("policy.md"),
    generate_db=_generate_db,
    integrity=_check,
    tasks="engine.tasks.domains.airline.recipes",
    reference_db_hash="124e39a664b56402bcd09cb8a6a9cece6acb8462337c969799d5658e3250f263",  # tau2-bench's own db.json
)

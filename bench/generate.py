"""Time the seeded synthetic DB generators at several sizes (1x, 10x, 100x tau2's 500 users).

Each size runs in its own process (fresh memory); prints generation time, encoded size, table
sizes and peak memory, plus whether the integrity checker found problems.

    python bench/generate.py [--users 500 5000 50000] [--seed 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import msgspec

from envs import DOMAINS, get_domain


def measure(domain: str, users: int, seed: int) -> dict[str, object]:
    """Generate one DB in this process and describe it."""
    started = time.perf_counter()
    dom = get_domain(domain)
    db = dom.generate_db(users=users, seed=seed)
    generate_s = time.perf_counter() - started
    data = msgspec.json.encode(db)
    problems = dom.check(db)
    return {
        "domain": domain, "users": users, "generate_s": round(generate_s, 3),
        "json_mb": round(len(data) / 1e6, 1),
        "tables": {t: len(getattr(db, t)) for t in type(db).__struct_fields__},
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "integrity_problems": len(problems),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[500, 5000, 50000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", nargs=2, metavar=("DOMAIN", "USERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker[0], int(args.worker[1]), args.seed)))
        return
    rows = []
    for domain in [d for d in DOMAINS if get_domain(d).db_generator is not None]:
        for users in args.users:
            out = subprocess.run(
                [sys.executable, __file__, "--worker", domain, str(users), "--seed", str(args.seed)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            rows.append(json.loads(out.stdout.splitlines()[-1]))
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    print(f"writ DB generators — Python {platform.python_version()}, {platform.machine()}, seed {args.seed}")
    print(f"{'domain':8}{'users':>8}{'gen s':>8}{'JSON MB':>9}{'peak MB':>9}{'problems':>9}  tables")
    for r in rows:
        tables = ", ".join(f"{k}={v}" for k, v in r["tables"].items())  # type: ignore[union-attr]
        print(f"{r['domain']:8}{r['users']:>8}{r['generate_s']:>8.2f}{r['json_mb']:>9.1f}{r['peak_mb']:>9.0f}"
              f"{r['integrity_problems']:>9}  {tables}")  # fmt: skip


if __name__ == "__main__":
    main()

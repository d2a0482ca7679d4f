"""Export tasks to tau2-bench's task JSON, so tau2-bench itself can evaluate a model on them.

Field names and shapes follow tau2-bench's ``src/tau2/data_model/tasks.py`` (``Task``,
``UserScenario``, ``StructuredUserInstructions``, ``Description``, ``EvaluationCriteria``,
``Action``). ``evaluation_criteria.actions`` holds the gold writes only, in order: tau2 replays
them on a fresh environment to get the target DB, and with ACTION in the reward basis it demands
each one verbatim. Evidence reads are not actions: writ accepts any read that yields the same
evidence (either user-lookup tool, say), so they go in ``description.notes`` as information, which
no tau2 reward reads. ``communicate_info`` holds the task's required outputs; ``reward_basis`` is
tau2's default for the domains it ships, ``["DB", "COMMUNICATE"]``.

Tasks carry the fingerprint (tau2's hash) of the DB they were made on. tau2 runs a task on its own
DB, so tasks made on another DB are exported only with that DB (``db``): it is written beside the
task file with a note on how to run tau2 on it; without it the export is refused in one line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from engine.files import write_atomic
from engine.tasks.model import Task, decode_task
from envs import DBLoadError, get_domain
from envs.kernel import tau2_db_hash

__all__ = ["TaskFileError", "export_file", "read_tasks", "to_tau2"]


class TaskFileError(ValueError):
    """A task file could not be read; the message is one line."""


def _actions(task: Task) -> list[dict[str, Any]]:
    """The gold writes as tau2 ``Action`` objects."""
    return [
        {
            "action_id": f"{task.task_id}_{i}",
            "requestor": "assistant",
            "name": a.name,
            "arguments": a.arguments,
            "info": None,
            "compare_args": None,
        }
        for i, a in enumerate(a for intent in task.intents for a in intent.actions)
    ]


def _evidence_note(task: Task) -> str | None:
    """The evidence reads, first time each, as a line of information (not required calls)."""
    seen: set[str] = set()
    reads = []
    for intent in task.intents:
        for r in intent.reads:
            if r.key() not in seen:
                seen.add(r.key())
                args = ", ".join(f"{k}={json.dumps(v)}" for k, v in r.arguments.items())
                reads.append(f"{r.name}({args})" + (f" [{r.purpose}]" if r.purpose else ""))
    if not reads:
        return None
    return "Evidence the agent needs (any read that yields it will do; not required calls): " + "; ".join(reads)


def to_tau2(task: Task) -> dict[str, Any]:
    """One task as a tau2-bench ``Task`` JSON object."""
    facts = task.facts
    purpose = (
        f"WRIT synthetic {task.trajectory_type} task: {task.w} write(s), {task.e} evidence read(s);"
        f" intents: {', '.join(i.kind for i in task.intents)}."
    )
    rules = "; ".join(f"{i.kind}: {i.rule_text}" for i in task.intents)
    return {
        "id": task.task_id,
        "description": {
            "purpose": purpose,
            "relevant_policies": None,
            "notes": "\n".join(n for n in (rules, _evidence_note(task)) if n),
        },
        "user_scenario": {
            "persona": None,
            "instructions": {
                "domain": task.domain,
                "reason_for_call": " ".join(facts.wants),
                "known_info": "\n".join(facts.known) or None,
                "unknown_info": None,
                "task_instructions": task.instruction,
            },
        },
        "ticket": None,
        "initial_state": None,
        "evaluation_criteria": {
            "actions": _actions(task),
            "env_assertions": None,
            "communicate_info": list(task.outputs),
            "nl_assertions": None,
            "reward_basis": ["DB", "COMMUNICATE"],
        },
    }


def read_tasks(path: str | Path) -> list[Task]:
    """Every task of a JSONL task file; a bad line raises ``TaskFileError`` naming it."""
    try:
        lines = Path(path).read_bytes().splitlines()
    except OSError as exc:
        raise TaskFileError(f"cannot read task file {path}: {exc.strerror}") from None
    tasks = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            tasks.append(decode_task(line))
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise TaskFileError(f"{path}:{number}: not a task: {exc}") from None
    return tasks


def export_file(tasks: Iterable[Task], out: str | Path, db: str | Path | None = None) -> int:
    """Write tasks as one tau2-bench task JSON list; returns how many were written.

    Tasks made on tau2-bench's own DB are written as they are. Tasks made on another DB need that
    DB (``db``, whose fingerprint must match theirs; given, it is always written): it is copied
    beside ``out`` as ``<out stem>.db.json`` with ``<out stem>.README.txt`` saying how to run tau2
    on it. Otherwise ``TaskFileError`` says why, in one line, and nothing is written.
    """
    tasks = list(tasks)
    out = Path(out)
    fingerprints = sorted({t.db_fingerprint for t in tasks})
    domains = sorted({t.domain for t in tasks})
    if len(domains) > 1:
        raise TaskFileError(f"tasks of several domains ({', '.join(domains)}): export one domain per file")
    reference = get_domain(domains[0]).reference_db_hash if domains else None
    beside: list[tuple[Path, bytes]] = []
    if len(fingerprints) > 1:
        raise TaskFileError(f"tasks made on {len(fingerprints)} different DBs: export one DB's tasks per file")
    if db is not None and fingerprints:
        beside = _db_beside(domains[0], fingerprints[0], Path(db), out)
    elif fingerprints and fingerprints != [reference]:
        if db is None:
            raise TaskFileError(
                f"these tasks were made on DB {fingerprints[0][:12]}, not tau2-bench's own {domains[0]} DB, "
                "so tau2 would run them on the wrong data: pass --db with the DB they were made on"
            )
    objects = [to_tau2(t) for t in tasks]
    for path, data in beside:
        write_atomic(path, data)
    write_atomic(out, (json.dumps(objects, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return len(objects)


def _db_beside(domain: str, fingerprint: str, db: Path, out: Path) -> list[tuple[Path, bytes]]:
    """The DB copy and the note written beside an export of tasks made on that DB."""
    dom = get_domain(domain)
    try:
        data = db.read_bytes()
        found = tau2_db_hash(dom.load_bytes(data, source=str(db)).new_state())
    except OSError as exc:
        raise TaskFileError(f"cannot read DB {db}: {exc.strerror}") from None
    except DBLoadError as exc:
        raise TaskFileError(str(exc)) from None
    if found != fingerprint:
        raise TaskFileError(f"{db} has fingerprint {found[:12]}, but the tasks were made on {fingerprint[:12]}")
    db_out = out.with_name(f"{out.stem}.db.json")
    note = (
        f"These {domain} tasks ({out.name}) were made by writ on the DB in {db_out.name}\n"
        f"(tau2 DB hash {fingerprint}), not on tau2-bench's own {domain} DB.\n"
        f"tau2-bench runs tasks on the DB of its domain: replace its data/tau2/domains/{domain}/db.json\n"
        f"with {db_out.name} (keep a copy of the original) before running them, and restore it after.\n"
        "On tau2's own DB every gold call of these tasks would fail and the scores would mean nothing.\n"
    )
    return [(db_out, data), (out.with_name(f"{out.stem}.README.txt"), note.encode("utf-8"))]

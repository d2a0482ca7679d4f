"""Export tasks to tau2-bench's task JSON, so tau2-bench itself can evaluate a model on them.

Field names and shapes follow tau2-bench's ``src/tau2/data_model/tasks.py`` (``Task``,
``UserScenario``, ``StructuredUserInstructions``, ``Description``, ``EvaluationCriteria``,
``Action``). ``evaluation_criteria.actions`` is one reference trajectory: each intent's evidence
reads (first time only) followed by its gold writes; tau2 replays it on a fresh environment to get
the target DB, so the reads change nothing. ``communicate_info`` holds the task's required
outputs; ``reward_basis`` is tau2's default for airline and retail, ``["DB", "COMMUNICATE"]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from engine.files import write_atomic
from engine.tasks.model import Task, decode_task

__all__ = ["TaskFileError", "export_file", "read_tasks", "to_tau2"]


class TaskFileError(ValueError):
    """A task file could not be read; the message is one line."""


def _actions(task: Task) -> list[dict[str, Any]]:
    steps: list[tuple[str, dict[str, Any], str | None]] = []
    seen: set[str] = set()
    for intent in task.intents:
        for r in intent.reads:
            if r.key() not in seen:
                seen.add(r.key())
                steps.append((r.name, r.arguments, r.purpose or None))
        steps += [(a.name, a.arguments, None) for a in intent.actions]
    return [
        {
            "action_id": f"{task.task_id}_{i}",
            "requestor": "assistant",
            "name": name,
            "arguments": arguments,
            "info": info,
            "compare_args": None,
        }
        for i, (name, arguments, info) in enumerate(steps)
    ]


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
        "description": {"purpose": purpose, "relevant_policies": None, "notes": rules},
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


def export_file(tasks: Iterable[Task], out: str | Path) -> int:
    """Write tasks as one tau2-bench task JSON list; returns how many were written."""
    objects = [to_tau2(t) for t in tasks]
    write_atomic(out, (json.dumps(objects, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return len(objects)

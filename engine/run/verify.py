"""Verify a finished conversation against its task: goal state, communicated outputs, evidence.

Three checks, each 1.0 or 0.0: the final state hash equals the task's goal hash; every output
the task requires (e.g. a refund amount) appears in an agent message, by tau2-bench's rule (one
message holds it, compared in lower case with commas removed); and before each gold write the agent
had made the evidence reads that write depends on, where an equivalent read counts (see
``engine.run.evidence``). The first two are exactly tau2-bench's DB and COMMUNICATE checks, so a
conversation writ keeps is one tau2 rewards. Failures are named so a run's
statistics say why conversations were dropped: ``wrong_argument:<tool>``, ``missing_write:<tool>``,
``extra_write:<tool>``, ``goal_state_mismatch``, ``missing_output``, ``evidence_not_read:<tool>``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import msgspec

from engine.records import RewardParts
from engine.run.evidence import Evidence
from engine.tasks.model import Task, call_key
from engine.tasks.recipe import get_spec

__all__ = ["CallRecord", "Verdict", "verify"]


class CallRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One tool call the agent made, in conversation order."""

    name: str
    arguments: dict[str, Any]
    output: str
    error: bool
    write: bool

    def key(self) -> str:
        """``call_key`` of the call (name + sorted-key arguments)."""
        return call_key(self.name, self.arguments)


class Verdict(msgspec.Struct, kw_only=True, frozen=True):
    """The verification of one conversation."""

    reward: RewardParts
    failures: list[str]

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return self.reward.total == 1.0


def _communicated(output: str, agent_texts: Sequence[str]) -> bool:
    """tau2-bench's COMMUNICATE rule: some agent message holds ``output`` (lower case, commas removed)."""
    wanted = output.lower()
    return any(wanted in text.lower().replace(",", "") for text in agent_texts)


def _write_failures(task: Task, calls: Sequence[CallRecord]) -> list[str]:
    """Explain a wrong final state from the writes the agent made versus the gold writes."""
    made = Counter(c.key() for c in calls if c.write and not c.error)
    gold = Counter(a.key() for a in task.actions)
    missing = gold - made
    extra = made - gold
    extra_names = Counter(k.split("{", 1)[0] for k in extra.elements())
    failures = []
    for key in missing.elements():
        name = key.split("{", 1)[0]
        if extra_names[name] > 0:
            extra_names[name] -= 1
            failures.append(f"wrong_argument:{name}")
        else:
            failures.append(f"missing_write:{name}")
    failures += [f"extra_write:{name}" for name in extra_names.elements()]
    return sorted(failures) or ["goal_state_mismatch"]


def _evidence_failures(task: Task, calls: Sequence[CallRecord]) -> list[str]:
    """Gold writes made before the reads their intent depends on (equivalent reads count)."""
    failures = []
    position = {}
    reads = get_spec(task.domain).reads
    for index, call in enumerate(calls):
        if call.write and not call.error:
            position.setdefault(call.key(), index)
    for intent in task.intents:
        for action in intent.actions:
            at = position.get(action.key())
            if at is None:
                continue  # a missing write is a goal-state failure, reported there
            done = Evidence((c for c in calls[:at] if not c.error and not c.write), reads)
            if not all(done.covers(read.name, read.arguments) for read in intent.reads):
                failures.append(f"evidence_not_read:{action.name}")
    return sorted(set(failures))


def verify(task: Task, final_hash: str, calls: Sequence[CallRecord], agent_texts: Sequence[str]) -> Verdict:
    """Check a finished conversation: its final state hash, tool calls and agent messages."""
    failures: list[str] = []
    goal = 1.0 if final_hash == task.goal_hash else 0.0
    if not goal:
        failures += _write_failures(task, calls)
    outputs = 1.0 if all(_communicated(o, agent_texts) for o in task.outputs) else 0.0
    if not outputs:
        failures.append("missing_output")
    evidence_failures = _evidence_failures(task, calls)
    evidence = 0.0 if evidence_failures else 1.0
    failures += evidence_failures
    reward = RewardParts(goal_state=goal, outputs=outputs, evidence=evidence, total=goal * outputs * evidence)
    return Verdict(reward=reward, failures=failures)

"""Task records: gold actions, evidence reads, intents, user facts, behaviour, and the task itself.

Every record is a msgspec Struct (``kw_only``, ``frozen``); a task file holds one ``Task`` per
line, encoded by ``encode_task`` with sorted keys so the same seed gives identical bytes. Nothing
here samples, validates or renders: those live in ``recipe``, ``validate`` and ``scripts``.

Axes (WRIT): ``w`` is the number of gold write actions; ``e`` is the number of distinct read calls
in the gold evidence plan (two reads are the same when name and arguments are equal). The
trajectory type is derived from (w, e) by ``trajectory_type`` and its thresholds below, only there.
A refusal task (``engine.tasks.refusals``) has W = 0: the policy forbids the request.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "READ_HEAVY_E",
    "WRITE_INTENSIVE_W",
    "Action",
    "Behavior",
    "Blueprint",
    "Candidate",
    "EvidenceRead",
    "Intent",
    "Selection",
    "Task",
    "UserFacts",
    "call_key",
    "decode_task",
    "encode_task",
    "trajectory_type",
]

WRITE_INTENSIVE_W = 3
"""A task with at least this many gold writes is "write-intensive" (whatever its E)."""
READ_HEAVY_E = 6
"""A task with fewer writes than ``WRITE_INTENSIVE_W`` and at least this many evidence reads is
"read-heavy"; every other task is "normal"."""

TrajectoryType = Literal["write-intensive", "read-heavy", "normal", "refusal"]


def trajectory_type(w: int, e: int) -> TrajectoryType:
    """The trajectory type of a task with ``w`` writes and ``e`` evidence reads (no write: a refusal)."""
    if w == 0:
        return "refusal"
    if w >= WRITE_INTENSIVE_W:
        return "write-intensive"
    if e >= READ_HEAVY_E:
        return "read-heavy"
    return "normal"


_key_encoder = msgspec.json.Encoder(order="sorted")


def call_key(name: str, arguments: dict[str, Any]) -> str:
    """A canonical string for a tool call: its name and sorted-key JSON arguments."""
    return name + _key_encoder.encode(arguments).decode()


class Action(msgspec.Struct, kw_only=True, frozen=True):
    """One gold tool call (a write, in order): the tool name and its JSON-object arguments."""

    name: str
    arguments: dict[str, Any]

    def key(self) -> str:
        """``call_key`` of this action."""
        return call_key(self.name, self.arguments)


class EvidenceRead(msgspec.Struct, kw_only=True, frozen=True):
    """One read call of the gold evidence plan, and why the agent needs it (``purpose``, prose)."""

    name: str
    arguments: dict[str, Any]
    purpose: str = ""

    def key(self) -> str:
        """``call_key`` of this read: the identity used to count distinct reads (E)."""
        return call_key(self.name, self.arguments)


class Candidate(msgspec.Struct, kw_only=True, frozen=True):
    """One option a selection rule compares: a label (e.g. 'HAT001 2024-05-20') and its value."""

    label: str
    value: float | str


class Selection(msgspec.Struct, kw_only=True, frozen=True):
    """How a rule picked one target out of several read results; checked tie-free by ``validate``.

    ``order`` says which end wins: ``min`` (cheapest, earliest, fewest stops ...) or ``max``
    (latest, "the one that matches" with value 1 against 0 ...). ``candidates`` lists every option
    the agent has to compare; exactly one must hold the best value, and it is ``winner``.
    """

    rule: str
    metric: str
    order: Literal["min", "max"]
    candidates: list[Candidate]
    winner: str


class UserFacts(msgspec.Struct, kw_only=True, frozen=True):
    """What the user simulator is told, as short sentences.

    ``known``: facts the user knows and gives when asked (ids, names, dates, addresses).
    ``wants``: the goals, in the user's own terms (the rule's description, not its answer).
    ``withhold``: things the user must not reveal unprompted (e.g. 'do not say the reservation id
    until the agent asks').
    ``if_fail``: what to do when a condition fails (e.g. 'if no direct flight is free, accept a
    one-stop flight'; 'if the agent refuses the cancellation, do not insist').
    """

    known: list[str] = msgspec.field(default_factory=list)
    wants: list[str] = msgspec.field(default_factory=list)
    withhold: list[str] = msgspec.field(default_factory=list)
    if_fail: list[str] = msgspec.field(default_factory=list)


class Intent(msgspec.Struct, kw_only=True, frozen=True):
    """One thing the user wants done, with the gold writes and the reads that identify them.

    ``kind``: the recipe's kind (e.g. 'cancel_reservation', 'change_cabin', 'return_items').
    ``rule``/``rule_text``: the selection rule id and its human description ('the cheapest direct
    flight on either May 20 or May 21'); rule 'given' means the user names the target outright.
    ``actions``: the gold writes of this intent, in order (usually one).
    ``reads``: the evidence reads this intent needs, in the order an agent would make them; reads
    shared with earlier intents may repeat here (E counts distinct reads over the whole task).
    ``selections``: the tie-free comparisons the rule makes (empty for 'given').
    ``target``: the key of the record the intent acts on (reservation id, order id, user id ...),
    so later intents can depend on it.
    ``depends_on``: indexes of earlier intents of the same task this one builds on.
    ``params``: structured context the policy checker reads (e.g. {'reason': 'health'}).
    ``outputs``: strings the agent must tell the user (e.g. a refund amount), may be empty.
    """

    kind: str
    rule: str
    rule_text: str
    actions: list[Action]
    reads: list[EvidenceRead]
    facts: UserFacts
    selections: list[Selection] = msgspec.field(default_factory=list)
    target: str = ""
    depends_on: list[int] = msgspec.field(default_factory=list)
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    outputs: list[str] = msgspec.field(default_factory=list)


class Blueprint(msgspec.Struct, kw_only=True, frozen=True):
    """A task before validation and rendering: one user's intents on one DB."""

    domain: str
    user_id: str
    intents: list[Intent]
    identity: list[str] = msgspec.field(default_factory=list)

    def actions(self) -> list[Action]:
        """Every gold write, in order."""
        return [a for intent in self.intents for a in intent.actions]

    def evidence(self) -> list[EvidenceRead]:
        """The evidence plan: the intents' reads in order, each distinct call once."""
        seen: set[str] = set()
        plan: list[EvidenceRead] = []
        for intent in self.intents:
            for r in intent.reads:
                k = r.key()
                if k not in seen:
                    seen.add(k)
                    plan.append(r)
        return plan


class Behavior(msgspec.Struct, kw_only=True, frozen=True):
    """How the simulated user behaves, sampled per task (see ``behaviors`` for the catalogue)."""

    disclosure: str
    tone: str
    verbosity: str
    mind_change: bool = False
    wrong_then_corrected: bool = False
    out_of_order: bool = False
    seed: int = 0


class Task(msgspec.Struct, kw_only=True, frozen=True):
    """A validated, rendered task: the unit written to a task file (one JSON object per line).

    ``actions`` are the gold writes in order; ``evidence`` the distinct reads in order;
    ``w == len(actions)``, ``e == len(evidence)``. ``db_fingerprint`` is tau2-bench's hash of the
    initial DB; ``goal_hash`` the kernel state hash after replaying ``actions`` on a fresh state.
    """

    task_id: str
    domain: str
    seed: int
    w: int
    e: int
    trajectory_type: TrajectoryType
    user_id: str
    intents: list[Intent]
    actions: list[Action]
    evidence: list[EvidenceRead]
    facts: UserFacts
    behavior: Behavior
    instruction: str
    outputs: list[str]
    db_fingerprint: str
    goal_hash: str


_task_encoder = msgspec.json.Encoder(order="sorted")
_task_decoder = msgspec.json.Decoder(Task)


def encode_task(task: Task) -> bytes:
    """One task as a JSON line (sorted keys, no trailing newline): stable bytes for a given task."""
    return _task_encoder.encode(task)


def decode_task(line: bytes | str) -> Task:
    """Parse one JSON line into a ``Task`` (raises ``msgspec.ValidationError``/``DecodeError``)."""
    return _task_decoder.decode(line)

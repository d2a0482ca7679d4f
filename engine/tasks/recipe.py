"""The recipe protocol: how a domain samples write intents from a DB state and composes tasks.

A domain's task module (named by its ``Domain.tasks``, e.g. ``engine/tasks/domains/<domain>/recipes.py``)
exposes ``SPEC``, a ``DomainSpec``: its recipes and refusal recipes, its policy checker, its user pool,
the identity facts a user gives to authenticate and what a customer does not know. ``get_spec(domain)``
imports it lazily.

A ``Recipe`` samples ONE intent for one user from a ``SampleContext`` (the state as earlier
intents of the task left it) and returns an ``Intent`` (gold writes + evidence reads + user facts +
rule description) or a ``Reject`` (why not). Recipes only read the state; ``compose`` applies each
intent's gold writes to the working state so the next recipe sees their effect. That is how
dependent intents work: a recipe whose ``follows`` names an earlier intent's kind receives that
intent as ``ctx.anchor`` and targets the same record (e.g. add bags to the reservation whose flights
were just changed).

Rules for recipe authors:
1. Never write to ``ctx.state`` (no ``mut``/``insert``/``dom.call`` of write tools).
2. The evidence reads are exactly the read calls an agent must make to pin down the arguments of
   the intent's writes and to check the policy (E counts distinct ones over the task). Include the
   lookup of the user (``get_user_details``/``find_user_id_by_*``) where the agent needs it.
3. A rule that compares options returns its comparison as a ``Selection`` (use ``unique_best``):
   the rule must single out exactly one option; on a tie, reject.
4. ``ctx.e_hint`` is how many NEW distinct reads the composer would like this intent to add
   (``ctx.seen`` holds the keys of reads already in the plan); prefer a rule of about that cost.
5. Rejection reasons are short, stable strings ``'<kind>: <why>'`` with no ids or numbers, so
   they count well (e.g. ``'cancel_reservation: no cancellable reservation'``).
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from engine.tasks.model import (
    Action,
    Blueprint,
    Candidate,
    EvidenceRead,
    Intent,
    Selection,
    UserFacts,
)
from envs import DOMAINS, get_domain
from envs.kernel import BaseDB, Domain, State

__all__ = [
    "DomainSpec",
    "PolicyCheck",
    "ReadEquivalence",
    "Recipe",
    "Reject",
    "SampleContext",
    "act",
    "compose",
    "facts",
    "get_spec",
    "read",
    "run_call",
    "unique_best",
]



class Reject(msgspec.Struct, frozen=True):
    """A recipe could not produce an intent (or a blueprint failed a check); ``reason`` says why."""

    reason: str


class SampleContext:
    """What a recipe sees when it samples one intent.

    ``state``: the working state (earlier intents of the task applied); read only.
    ``base``: the shared base DB (cache lookups derived from it with ``envs.kernel.Index``).
    ``user_id``: the task's user. ``rng``: the only randomness allowed.
    ``prior``: earlier intents of the task. ``anchor``: index into ``prior`` of the intent this
    one must build on, or None for an independent intent. ``e_hint``: wanted new reads.
    ``seen``: ``EvidenceRead.key()`` of every read already in the plan.
    ``w_left``: gold writes the task still wants (an intent with more writes overshoots W).
    """

    __slots__ = (
        "anchor",
        "base",
        "e_hint",
        "prior",
        "rng",
        "seen",
        "state",
        "user_id",
        "w_left",
    )

    def __init__(
        self,
        state: State,
        user_id: str,
        rng: random.Random,
        prior: Sequence[Intent] = (),
        anchor: int | None = None,
        e_hint: int = 2,
        seen: frozenset[str] | set[str] = frozenset(),
        w_left: int = 1,
    ) -> None:
        self.state = state
        self.base: BaseDB = state.base
        self.user_id = user_id
        self.rng = rng
        self.prior = list(prior)
        self.anchor = anchor
        self.e_hint = e_hint
        self.seen = seen
        self.w_left = w_left

    def anchor_intent(self) -> Intent | None:
        """The intent this one depends on, or None."""
        return None if self.anchor is None else self.prior[self.anchor]

    def new_reads(self, reads: Sequence[EvidenceRead]) -> int:
        """How many of ``reads`` are not yet in the plan (distinct calls)."""
        return len({r.key() for r in reads} - set(self.seen))


SampleFn = Callable[[SampleContext], "Intent | Reject"]
PolicyCheck = Callable[[State, Action, Intent, Sequence[Action]], "str | None"]
"""``policy(state, action, intent, done)``: the reason ``action`` breaks the domain policy, or None.

``state`` is the state just before the action; ``intent`` the intent it belongs to (its ``params``
carry context such as a cancellation reason); ``done`` the gold writes of the task already applied.
"""


@dataclass(frozen=True)
class Recipe:
    """One kind of write intent: ``sample`` draws an instance, ``writes`` names its write tools.

    ``follows``: the intent kinds this recipe can depend on (``ctx.anchor`` is then set to one of
    them); empty if it never depends. ``weight``: relative frequency among independent picks.
    ``standalone``: False for a recipe that only makes sense after an anchor.
    """

    kind: str
    writes: tuple[str, ...]
    sample: SampleFn
    follows: tuple[str, ...] = ()
    weight: float = 1.0
    standalone: bool = True


@dataclass(frozen=True)
class ReadEquivalence:
    """How a domain's read calls stand in for one another when a planned evidence read is matched.

    ``identity``: lookups that all identify the customer; any one of them counts for another.
    ``canonical(name, args)``: the arguments in the domain's canonical spelling (after the generic
    one: strings stripped and case-folded, numbers as floats), e.g. an order id with its ``#``.
    ``implied``: read name -> (another tool, ``holds(args, output)``): that tool's successful output
    holds the record the read would fetch (a product's details list each of its items).
    """

    identity: frozenset[str] = frozenset()
    canonical: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None
    implied: Mapping[str, tuple[str, Callable[[dict[str, Any], str], bool]]] = field(default_factory=dict)


@dataclass(frozen=True)
class DomainSpec:
    """A domain's task-synthesis plug-in.

    ``users(base)``: user ids a task may be about, in a stable order (cache it with an ``envs.kernel.Index``).
    ``identity(state, user_id)``: what the user knows about themselves to authenticate (e.g.
    'Your user id is mia_li_3668.'), put first in the task's known facts.
    ``unknown``: what a customer of this domain does not know and leaves the agent to look up (one
    sentence in the user's instruction).
    ``refusals``: samplers of refusal intents (see ``engine.tasks.refusals``); none by default.
    ``reads``: which reads stand in for which when an agent's reads are matched to the plan.
    """

    domain: str
    recipes: tuple[Recipe, ...]
    policy: PolicyCheck
    users: Callable[[BaseDB], Sequence[str]]
    identity: Callable[[State, str], list[str]]
    unknown: str = "Ids, prices and amounts: the agent looks them up; you do not know them in advance."
    refusals: tuple[SampleFn, ...] = ()
    reads: ReadEquivalence = ReadEquivalence()

    def recipe(self, kind: str) -> Recipe:
        """The recipe of a kind (KeyError if unknown)."""
        for r in self.recipes:
            if r.kind == kind:
                return r
        raise KeyError(kind)


def get_spec(domain: str) -> DomainSpec:
    """The ``DomainSpec`` of a domain: the module its registry entry names (imported on first use)."""
    module = get_domain(domain).tasks if domain in DOMAINS else None
    if module is None:
        with_tasks = [d for d in DOMAINS if get_domain(d).tasks is not None]
        raise ValueError(f"no task recipes for domain {domain!r}; choose one of: {', '.join(with_tasks)}")
    return importlib.import_module(module).SPEC


# -- helpers for recipes ------------------------------------------------------------------------
def read(name: str, purpose: str = "", **arguments: Any) -> EvidenceRead:
    """An evidence read: ``read('get_user_details', 'find the reservations', user_id=uid)``."""
    return EvidenceRead(name=name, arguments=arguments, purpose=purpose)


def act(name: str, **arguments: Any) -> Action:
    """A gold write: ``act('cancel_reservation', reservation_id='ZFA04Y')``.

    Arguments must be plain JSON values (dicts, lists, str, int, float, bool, None), exactly as
    the tool call would carry them (e.g. flights as ``[{'flight_number': ..., 'date': ...}]``).
    """
    return Action(name=name, arguments=arguments)


def unique_best(
    rule: str,
    metric: str,
    order: Literal["min", "max"],
    options: Sequence[tuple[str, float | str, Any]],
) -> tuple[Any, Selection] | Reject:
    """Pick the one option with the best value, or reject on a tie or an empty list.

    ``options`` are ``(label, value, payload)``; labels must be distinct. Returns the winner's
    payload and the ``Selection`` to record on the intent. Reject reasons: ``'tie: <rule>'``,
    ``'no options: <rule>'``.
    """
    if not options:
        return Reject(f"no options: {rule}")
    values = [o[1] for o in options]
    best = min(values) if order == "min" else max(values)  # type: ignore[type-var]
    winners = [o for o in options if o[1] == best]
    if len(winners) != 1:
        return Reject(f"tie: {rule}")
    label, _, payload = winners[0]
    selection = Selection(
        rule=rule,
        metric=metric,
        order=order,
        candidates=[Candidate(label=o[0], value=o[1]) for o in options],
        winner=label,
    )
    return payload, selection


# -- composition ------------------------------------------------------------------------------
def _pick_recipe(
    spec: DomainSpec, prior: Sequence[Intent], rng: random.Random, dependent_p: float
) -> tuple[Recipe, int | None]:
    """Choose the next recipe: a dependent one (with an anchor) with probability ``dependent_p``."""
    if prior and rng.random() < dependent_p:
        pairs = [(r, i) for i, intent in enumerate(prior) for r in spec.recipes if intent.kind in r.follows]
        if pairs:
            return rng.choice(pairs)
    pool = [r for r in spec.recipes if r.standalone]
    return rng.choices(pool, weights=[r.weight for r in pool])[0], None


def compose(
    spec: DomainSpec,
    base: BaseDB,
    user_id: str,
    rng: random.Random,
    w_target: int,
    e_target: int,
    dependent_p: float = 0.4,
    tries_per_intent: int = 6,
    fit_tries: int = 4,
) -> tuple[Blueprint | None, list[str]]:
    """Compose intents for one user until the task has at least ``w_target`` gold writes.

    Steps, per intent: 1) pick a recipe (dependent on an earlier intent with probability
    ``dependent_p`` when some recipe follows an earlier kind); 2) sample it with the E budget left
    spread over the writes left; for the intent that completes W, keep up to ``fit_tries``
    samples and take the first that lands exactly on (W, E), else the closest; 3) apply its gold
    writes to the working state (a write the kernel refuses rejects the intent). Returns the
    blueprint (None if an intent could not be placed in ``tries_per_intent`` tries) and every
    rejection reason met on the way (for the stats). The blueprint is not validated here:
    ``validate.validate`` replays it on a fresh state.
    """
    domain = get_domain(spec.domain)
    state = base.new_state()
    intents: list[Intent] = []
    seen: set[str] = set()
    rejections: list[str] = []
    writes = 0
    while writes < w_target:
        best: tuple[int, Intent, int | None] | None = None
        fits = 0
        for _ in range(tries_per_intent):
            # 1) pick a recipe
            recipe, anchor = _pick_recipe(spec, intents, rng, dependent_p)
            # 2) sample it
            left = w_target - writes
            e_hint = max(0, round((e_target - len(seen)) / left))
            ctx = SampleContext(state, user_id, rng, intents, anchor, e_hint, seen, left)
            result = recipe.sample(ctx)
            if isinstance(result, Reject):
                rejections.append(result.reason)
                continue
            if not result.actions:
                rejections.append(f"{recipe.kind}: no action")
                continue
            if len(result.actions) < left:
                best = (0, result, anchor)
                break
            e_final = len(seen | {r.key() for r in result.reads})
            gap = 10 * (len(result.actions) - left) + abs(e_final - e_target)
            if best is None or gap < best[0]:
                best = (gap, result, anchor)
            fits += 1
            if gap == 0 or fits >= fit_tries:
                break
        if best is None:
            return None, rejections
        _, result, anchor = best
        # 3) apply its writes
        for action in result.actions:
            error = run_call(domain, state, action.name, action.arguments)
            if error is not None:
                rejections.append(f"action failed: {action.name}")
                return None, rejections
        if anchor is not None and anchor not in result.depends_on:
            result = msgspec.structs.replace(result, depends_on=[*result.depends_on, anchor])
        intents.append(result)
        seen.update(r.key() for r in result.reads)
        writes += len(result.actions)
    identity = spec.identity(base.new_state(), user_id)
    blueprint = Blueprint(domain=spec.domain, user_id=user_id, intents=intents, identity=identity)
    return blueprint, rejections


def run_call(domain: Domain, state: State, name: str, arguments: dict[str, Any]) -> str | None:
    """Run a gold call through ``Domain.call``; the refusal text, or None when it ran.

    Strict: a kernel error raises instead of reading as a refusal, so a kernel bug stops synthesis
    rather than quietly shaping which tasks are made.
    """
    result = domain.call(state, name, arguments, strict=True)
    return None if result.ok else result.text


def facts(
    known: Sequence[str] = (),
    wants: Sequence[str] = (),
    withhold: Sequence[str] = (),
    if_fail: Sequence[str] = (),
) -> UserFacts:
    """A ``UserFacts`` from sequences of sentences."""
    return UserFacts(known=list(known), wants=list(wants), withhold=list(withhold), if_fail=list(if_fail))

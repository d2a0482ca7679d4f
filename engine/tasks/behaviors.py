"""The catalogue of simulated-user behaviours and the seeded sampler that picks one per task.

A behaviour changes how the user talks, never what the goal is: disclosure style (everything at
once, piecemeal, only when asked), tone, verbosity, a mind change before any write, a detail given
wrong then corrected, and requests made out of order (only for tasks whose intents depend on no
other intent, act on distinct records and at most one of which resolves a comparison rule, since a
rule is evaluated on the state the earlier intents leave; a balance shared by two intents, such as
one gift card paying twice, can still make the order matter). ``guidance`` turns a behaviour into
instruction sentences for the user simulator.
"""

from __future__ import annotations

import random

from engine.tasks.model import Behavior, Blueprint

__all__ = ["DISCLOSURES", "TONES", "VERBOSITIES", "guidance", "sample_behavior"]

DISCLOSURES = {
    "all_at_once": (
        "Name all of your requests in your first message (details such as ids can wait until the agent asks)."
    ),
    "piecemeal": "Reveal your requests one at a time; bring up the next only when the current one is done.",
    "when_asked": "Start with a short, general opening and give details only when the agent asks for them.",
}
TONES = {
    "neutral": "Speak in a plain, matter-of-fact way.",
    "friendly": "Be warm and polite.",
    "impatient": "Be impatient: you are in a hurry and say so.",
    "anxious": "Sound worried about getting this right.",
    "curt": "Be curt; no small talk.",
    "chatty": "Be chatty and add small, irrelevant remarks.",
}
VERBOSITIES = {
    "terse": "Use short messages, one sentence where possible.",
    "normal": "Use messages of normal length.",
    "verbose": "Use long messages and explain your situation.",
}
MIND_CHANGE = (
    "Before the agent changes anything, hesitate about one of your requests (wonder aloud whether"
    " a small variation of it would be better), then settle on exactly what is described here."
)
WRONG_THEN_CORRECTED = (
    "The first time you give an id or a date, get one character wrong; correct it in your next message."
)
OUT_OF_ORDER = "Bring up your requests in a different order from the one listed."

P_MIND_CHANGE = 0.15
P_WRONG_DETAIL = 0.15
P_OUT_OF_ORDER = 0.3


def sample_behavior(seed: int, blueprint: Blueprint) -> Behavior:
    """A behaviour drawn from the catalogue with its own seeded generator (recorded on it)."""
    rng = random.Random(seed)
    targets = [i.target for i in blueprint.intents]
    independent = (
        len(targets) > 1
        and all(targets)
        and len(set(targets)) == len(targets)
        and not any(i.depends_on for i in blueprint.intents)
        and sum(1 for i in blueprint.intents if i.selections) <= 1
    )
    return Behavior(
        disclosure=rng.choice(sorted(DISCLOSURES)),
        tone=rng.choice(sorted(TONES)),
        verbosity=rng.choice(sorted(VERBOSITIES)),
        mind_change=rng.random() < P_MIND_CHANGE,
        wrong_then_corrected=rng.random() < P_WRONG_DETAIL,
        out_of_order=independent and rng.random() < P_OUT_OF_ORDER,
        seed=seed,
    )


def guidance(behavior: Behavior) -> list[str]:
    """The behaviour as instruction sentences for the user simulator."""
    lines = [
        DISCLOSURES[behavior.disclosure],
        TONES[behavior.tone],
        VERBOSITIES[behavior.verbosity],
    ]
    if behavior.mind_change:
        lines.append(MIND_CHANGE)
    if behavior.wrong_then_corrected:
        lines.append(WRONG_THEN_CORRECTED)
    if behavior.out_of_order:
        lines.append(OUT_OF_ORDER)
    return lines

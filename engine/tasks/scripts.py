"""User scripts: a task's structured facts and behaviour rendered as the user simulator's instruction.

``render`` is the deterministic template (used whenever no model is configured). ``phrase`` asks a
backend (``engine.backends.base.Backend``) to reword the templates as natural prose, all tasks in
one batch; a rewording that drops any id, date or number of the template is discarded and the
template kept, so the structured facts stay the source of truth.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from engine.tasks.behaviors import guidance
from engine.tasks.model import Behavior, Blueprint, Task, UserFacts
from engine.tasks.recipe import DomainSpec

if TYPE_CHECKING:
    from engine.backends.base import Backend

__all__ = ["merge_facts", "must_keep", "phrase", "render"]

_TOKEN = re.compile(r"[A-Za-z0-9_.@-]*\d[A-Za-z0-9_.@-]*")
PHRASE_SYSTEM = (
    "You rewrite instructions for a person who will call customer service. Write them as natural,"
    " second-person prose, in the same order. Keep every id, name, date, number and amount exactly"
    " as written. Add nothing, drop nothing. Reply with the rewritten instructions only."
)


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def merge_facts(blueprint: Blueprint) -> UserFacts:
    """The task's facts: identity first, then each intent's facts in order, duplicates dropped."""
    intents = blueprint.intents
    return UserFacts(
        known=_unique([*blueprint.identity, *(k for i in intents for k in i.facts.known)]),
        wants=_unique([w for i in intents for w in i.facts.wants]),
        withhold=_unique([w for i in intents for w in i.facts.withhold]),
        if_fail=_unique([f for i in intents for f in i.facts.if_fail]),
    )


def render(spec: DomainSpec, facts: UserFacts, behavior: Behavior) -> str:
    """The deterministic instruction text for the user simulator, split into what the user knows,
    what they want, what they do not know (``spec.unknown``), and how they talk."""
    lines = [f"You are a customer contacting the {spec.domain} customer service."]
    lines.append("What you know:")
    lines += [f"- {k}" for k in facts.known]
    lines.append("What you want, in this order:")
    lines += [f"{n}. {want}" for n, want in enumerate(facts.wants, 1)]
    if facts.if_fail:
        lines.append("If something is not possible:")
        lines += [f"- {f}" for f in facts.if_fail]
    lines.append("What you do not know:")
    lines.append(f"- {spec.unknown}")
    lines.append("- Anything else not written here: if the agent asks for it, say you do not know.")
    if facts.withhold:
        lines.append("Keep in mind:")
        lines += [f"- {w}" for w in facts.withhold]
    lines.append("How you talk:")
    lines += [f"- {g}" for g in guidance(behavior)]
    return "\n".join(lines)


def must_keep(text: str) -> list[str]:
    """Tokens a rewording must keep verbatim: everything with a digit (ids, dates, amounts)."""
    return _unique(t.strip(".-") for t in _TOKEN.findall(text))


async def phrase(
    tasks: Sequence[Task], backend: Backend, max_tokens: int = 512, temperature: float = 0.7
) -> tuple[list[Task], int]:
    """Tasks with their instructions reworded by ``backend``; also how many kept the template."""
    from engine.backends.base import Request, SamplingParams

    sampling = SamplingParams(max_tokens=max_tokens, temperature=temperature)
    requests = [
        Request(
            request_id=task.task_id,
            messages=[
                {"role": "system", "content": PHRASE_SYSTEM},
                {"role": "user", "content": task.instruction},
            ],
            sampling=sampling,
            seed=task.behavior.seed,
        )
        for task in tasks
    ]
    completions = await backend.generate(requests)
    out: list[Task] = []
    kept = 0
    for task, completion in zip(tasks, completions, strict=True):
        text = completion.text.strip()
        if completion.error or not text or any(t not in text for t in must_keep(task.instruction)):
            kept += 1
            out.append(task)
            continue
        out.append(msgspec.structs.replace(task, instruction=text))
    return out, kept

"""Task text a customer could say: required outputs are asked for, no template contradicts a
behaviour, either/or choices are ones a customer offers, and the wording is not a specification."""

from __future__ import annotations

import itertools
import re

import pytest

from engine.tasks.behaviors import DISCLOSURES, TONES, VERBOSITIES
from engine.tasks.model import Behavior, Task
from engine.tasks.recipe import get_spec
from engine.tasks.scripts import render
from engine.tasks.synthesis import synthesize
from envs import BaseDB


@pytest.fixture(scope="module")
def tasks(tau2_bases: dict[str, BaseDB]) -> dict[str, list[Task]]:
    return {d: synthesize(d, tau2_bases[d], 150, seed=9)[0] for d in ("airline", "retail")}


def test_every_required_output_is_asked_for(tasks: dict[str, list[Task]]) -> None:
    """An output the agent must state is one the user asks about (else a perfect agent fails)."""
    checked = 0
    for domain_tasks in tasks.values():
        for task in domain_tasks:
            for intent in task.intents:
                if intent.outputs:
                    checked += 1
                    assert any("want to know" in w for w in intent.facts.wants), (task.task_id, intent.facts.wants)
                    assert "want to know" in task.instruction
    assert checked >= 50


# (pattern, pattern): texts that must never appear together in one rendered instruction
CONTRADICTIONS = [
    (r"everything you want in your first message", r"only when the agent asks"),
    (r"in your first message", r"[Aa]t first ask for something"),
]
# texts that must never appear at all
NEVER = [
    r"\(the cheapest of those\) direct",  # an ungrammatical rule
    r"fewest stops[^.]*\bdirect option",  # 'fewest stops' among direct flights only is just 'cheapest'
    r"describe the order instead",  # with nothing given to describe
    r"^\d+\. (Change|Exchange), in ",  # a specification, not a customer
]
RETAIL_NEVER = [r"another day or cabin"]


def _behaviours() -> list[Behavior]:
    out = []
    for disclosure, mind, wrong, order in itertools.product(sorted(DISCLOSURES), *([(False, True)] * 3)):
        out.append(Behavior(disclosure=disclosure, tone="neutral", verbosity="normal", mind_change=mind,
                            wrong_then_corrected=wrong, out_of_order=order))  # fmt: skip
    out += [Behavior(disclosure="piecemeal", tone=t, verbosity=v) for t in TONES for v in VERBOSITIES]
    return out


def test_no_recipe_and_behaviour_combination_contradicts_itself(tasks: dict[str, list[Task]]) -> None:
    rendered = 0
    for domain, domain_tasks in tasks.items():
        by_kind = {}
        for task in domain_tasks:
            by_kind.setdefault(tuple(i.kind for i in task.intents), task)
        assert len(by_kind) >= 5
        for task in by_kind.values():
            for behavior in _behaviours():
                text = render(get_spec(domain), task.facts, behavior)
                rendered += 1
                for a, b in CONTRADICTIONS:
                    assert not (re.search(a, text) and re.search(b, text)), (task.task_id, a, b, text)
                for pattern in NEVER + (RETAIL_NEVER if domain == "retail" else []):
                    assert not re.search(pattern, text, re.MULTILINE), (task.task_id, pattern, text)
    assert rendered > 500


NEW_YORK = {"JFK", "EWR", "LGA"}  # the one metro area with several airports in the airline DB


def test_either_or_origins_share_a_metro_area(tasks: dict[str, list[Task]]) -> None:
    """'From SFO or DEN' is not a choice a customer offers; 'from JFK or Newark' is."""
    seen = 0
    for task in tasks["airline"]:
        for want in task.facts.wants:
            if not want.startswith("Book"):
                continue
            head = want.split(" to ", 1)[0]
            codes = re.findall(r"\(([A-Z]{3})\)", head)
            if len(codes) > 1:
                seen += 1
                assert set(codes) <= NEW_YORK, want


def test_change_cabin_plans_no_fare_search(tasks: dict[str, list[Task]]) -> None:
    """update_reservation_flights prices a cabin change itself: a fare search is not needed evidence."""
    found = 0
    for task in tasks["airline"]:
        for intent in task.intents:
            if intent.kind == "change_cabin":
                found += 1
                assert not any(r.name.startswith("search_") for r in intent.reads), task.task_id
    assert found >= 3


def test_every_rendered_instruction_splits_known_wanted_and_unknown(tasks: dict[str, list[Task]]) -> None:
    for domain_tasks in tasks.values():
        for task in domain_tasks[:20]:
            text = task.instruction
            assert "What you know:" in text and "What you want" in text and "What you do not know:" in text

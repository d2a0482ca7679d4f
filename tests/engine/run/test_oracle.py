"""Oracle conversations: a scripted gold agent and a scripted user pass every synthesized task.

For 100 tasks per domain (refusal tasks included), the agent that does exactly the gold plan and
says the required outputs, against a user that follows its instruction, must pass verification and
end on the user's stop token within the default turn limit (``engine.tasks.turns.turn_limit``).
"""

from __future__ import annotations

import pytest

from engine.records import NATURAL_ENDS
from engine.tasks.synthesis import synthesize
from envs import BaseDB
from tests.engine.run.scripted import play_gold


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_gold_agent_and_scripted_user_pass_every_task(domain: str, tau2_bases: dict[str, BaseDB]) -> None:
    base = tau2_bases[domain]
    tasks, _ = synthesize(domain, base, 100, seed=5)
    assert len(tasks) == 100
    for task in tasks:
        conv, verdict = play_gold(task, base)
        assert conv.termination == "user_stop", (task.task_id, conv.termination, len(conv.messages))
        assert conv.termination in NATURAL_ENDS
        assert verdict.passed, (task.task_id, verdict.failures)
    assert sum(t.w == 0 for t in tasks) >= 5  # refusal tasks are among them


def test_a_limit_below_the_gold_plan_cuts_the_conversation(tau2_bases: dict[str, BaseDB]) -> None:
    """The turn limit is what ends a conversation too long for it (the oracle is not just lucky)."""
    base = tau2_bases["airline"]
    tasks, _ = synthesize("airline", base, 30, seed=5)
    task = max(tasks, key=lambda t: t.w + t.e)
    conv, verdict = play_gold(task, base, max_steps=2 * (task.w + task.e))
    assert conv.termination == "max_turns" and not verdict.passed

"""The turn limit a task needs: how many messages a conversation may hold before it is cut off.

A conversation's messages are the system prompt, the greeting, every user and agent message, and
two per tool call (the call and its result). A task's gold plan alone needs two messages per
distinct read and per write; each write also needs the agent to ask and the user to confirm; each
intent needs the user to ask and the agent to answer; behaviours (a mind change, a detail given
wrong, details only when asked) add exchanges. ``turn_limit`` adds those up with room for a real
agent's detours (an extra lookup, a failed call, a clarifying question).
"""

from __future__ import annotations

from engine.tasks.model import Task

__all__ = ["turn_limit"]

OPENING = 2  # system prompt + greeting
PER_CALL = 2  # the assistant's tool call + the tool's result
PER_WRITE_CONFIRM = 2  # "shall I go ahead?" + "yes"
PER_INTENT = 6  # the request, the answer, and one clarifying exchange
AUTHENTICATION = 4  # asking for and giving the identity details
SLACK = 16  # room for detours: a repeated lookup, a failed call, a question more


def turn_limit(task: Task) -> int:
    """The message budget of a conversation about ``task`` (used when ``limits.max_steps`` is unset)."""
    calls = task.w + task.e
    behavior = task.behavior
    extra = 4 * (behavior.mind_change + behavior.wrong_then_corrected) + 4 * (behavior.disclosure == "when_asked")
    intents = max(1, len(task.intents))
    return (
        OPENING + AUTHENTICATION + PER_CALL * calls + PER_WRITE_CONFIRM * task.w + PER_INTENT * intents + extra + SLACK
    )

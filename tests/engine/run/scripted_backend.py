"""A test-only ``Backend`` that answers with the scripted gold-plan policies of ``bench/scripted.py``.

The tiny test model never reaches a goal and SmolLM2 rarely does, so tests that need conversations
that pass (quota runs meeting their quotas) drive the real runner with these scripted roles. It is
not registered with the backend factory: no config can name it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.scripted import Scripted, Tokens, wrong_writes
from engine.backends.base import Backend, Completion, Request
from engine.tasks.model import Task
from envs import BaseDB, Domain

__all__ = ["ScriptedBackend"]


class ScriptedBackend(Backend):
    """Scripted agent and user turns for the tasks of ``tasks`` (a live list: batches may grow it)."""

    name = "scripted"

    def __init__(self, domain: Domain, base: BaseDB, tasks: list[Task], p: float, q: float = 0.0) -> None:
        self.domain, self.base, self.tasks = domain, base, tasks
        self.p, self.q = p, q
        self.tokens = Tokens(lambda text: len(text.split()))
        self._scripts: dict[str, Scripted] = {}

    def agent_turn_constraint(self, tools: list[dict[str, Any]]) -> None:
        """Scripted turns need no constraint."""
        return None

    def _script(self, task_id: str) -> Scripted:
        script = self._scripts.get(task_id)
        if script is None:
            task = next(t for t in self.tasks if t.task_id == task_id)
            wrong = wrong_writes(self.domain, self.base, task, self.tasks)
            script = self._scripts[task_id] = Scripted(task, wrong, self.p, self.q, self.tokens)
        return script

    async def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for request in requests:
            conversation, turn = request.request_id.split("/", 1)
            script = self._script(conversation.split("#", 1)[0])
            out.append(script.agent(request) if turn.startswith("a") else script.user(request))
        return out

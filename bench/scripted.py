"""Scripted agent and user policies that follow a task's gold plan, for yield simulations and tests.

Not a backend and not a model: functions from a ``Request`` to a ``Completion`` that drive the real
``engine.run.conversation.Conversation`` (dead-state checks, branching, verification, grounding).
The agent reads what its plan needs, asks before each write, writes, and finally states the task's
outputs; at a write it makes a *wrong write* (a gold call of the domain with one argument taken
from another task, one the kernel accepts) with probability ``p``, and at any call a *wrong
argument* (an id the kernel refuses) with probability ``q``. After a mistake it goes on with its
plan. Its choices come from ``random.Random(request.seed)``, so a resampled turn (a new seed)
draws again. The user states its instruction, says yes to questions and stops when told the work
is done. Token counts come from a real tokenizer over the rendered messages (``Tokens``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from typing import Any

from engine.backends.base import Completion, Request, SamplingParams, ToolCall
from engine.records import ConversationResult
from engine.run.conversation import Conversation
from engine.run.reach import reachable_hashes
from engine.run.runner import conversation_result
from engine.tasks.model import Action, Task, call_key
from envs import BaseDB, Domain, State

__all__ = ["Scripted", "Tokens", "play", "wrong_writes"]

YES = "Yes, please go ahead."
STOP = "###STOP###"
DONE = "Everything is done."
BAD_ID = "ZZ9999"


class Tokens:
    """Counts tokens of chat messages with a real tokenizer (cached per message text)."""

    def __init__(self, count: Callable[[str], int]) -> None:
        self._count = count
        self._cache: dict[str, int] = {}

    @classmethod
    def smollm2(cls) -> Tokens:
        """SmolLM2's own tokenizer (its GGUF, vocabulary only, through llama-cpp-python)."""
        from llama_cpp import Llama

        from engine.backends.models import resolve_model_alias

        llm = Llama(model_path=str(resolve_model_alias("smollm2-135m")), vocab_only=True, verbose=False)
        return cls(lambda text: len(llm.tokenize(text.encode(), add_bos=False, special=True)))

    def text(self, text: str) -> int:
        """Tokens of one string."""
        n = self._cache.get(text)
        if n is None:
            n = self._cache[text] = self._count(text)
        return n

    def message(self, m: dict[str, Any]) -> int:
        """Tokens of one message as a ChatML template renders it (tool calls as Hermes JSON)."""
        body = m.get("content") or ""
        for call in m.get("tool_calls") or ():
            body += f"<tool_call>{json.dumps(call['function'])}</tool_call>"
        return self.text(f"<|im_start|>{m['role']}\n{body}<|im_end|>\n")

    def prompt(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None) -> int:
        """Tokens of a whole prompt (the tool list rendered once into it)."""
        extra = self.text(json.dumps(list(tools))) if tools else 0
        return extra + sum(self.message(m) for m in messages)


def _amounts(value: Any) -> list[Any]:
    """The numbers in a call's arguments (amounts, counts), each once, in order."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    found: list[Any] = []
    for item in items:
        found += [a for a in _amounts(item) if a not in found]
    return found


def wrong_writes(
    domain: Domain, base: BaseDB, task: Task, pool: Sequence[Task], per_action: int = 3
) -> dict[int, list[Action]]:
    """Per gold write (by index), writes that differ in one argument (a value another task used
    with the same tool), succeed on the state the gold writes before it leave, and change the
    state otherwise than the gold write does."""
    values: dict[tuple[str, str], list[Any]] = {}
    for other in pool:
        for action in other.actions:
            for name, value in action.arguments.items():
                seen = values.setdefault((action.name, name), [])
                if value not in seen:
                    seen.append(value)
    state = base.new_state()
    found: dict[int, list[Action]] = {}
    for index, action in enumerate(task.actions):
        snapshot = state.snapshot()
        gold = State.restore(base, snapshot)
        domain.call(gold, action.name, action.arguments)
        variants: list[Action] = []
        for name, value in action.arguments.items():
            for other in values.get((action.name, name), []):
                if other == value or len(variants) >= per_action:
                    continue
                wrong = Action(name=action.name, arguments={**action.arguments, name: other})
                trial = State.restore(base, snapshot)
                result = domain.call(trial, wrong.name, wrong.arguments)
                if not result.error and trial.hash() != gold.hash():
                    variants.append(wrong)
        found[index] = variants
        domain.call(state, action.name, action.arguments)
    return found


class Scripted:
    """The scripted agent and user of one task (see the module docstring)."""

    def __init__(self, task: Task, wrong: dict[int, list[Action]], p: float, q: float, tokens: Tokens) -> None:
        self.task = task
        self.wrong = wrong
        self.p, self.q = p, q
        self.tokens = tokens
        self.plan: list[tuple[str, Any]] = []  # ("call", (name, args, write index)) | ("say", text)
        done: set[str] = set()
        write = 0
        for intent in task.intents:
            for read in intent.reads:
                if read.key() not in done:
                    done.add(read.key())
                    self.plan.append(("call", (read.name, read.arguments, None)))
            for action in intent.actions:
                for amount in _amounts(action.arguments):  # amounts and counts are computed first
                    self.plan.append(("call", ("calculate", {"expression": str(amount)}, None)))
                args = ", ".join(json.dumps(v) for v in action.arguments.values())
                self.plan.append(("say", f"I can do {action.name} with {args}. Shall I proceed?"))
                self.plan.append(("call", (action.name, action.arguments, write)))
                write += 1
        for output in task.outputs:  # a computed amount is computed with the calculate tool
            if output.replace(".", "", 1).isdigit():
                self.plan.append(("call", ("calculate", {"expression": output}, None)))
        outputs = " ".join(task.outputs)
        self.plan.append(("say", f"{DONE} {outputs}".strip()))

    def _position(self, messages: Sequence[dict[str, Any]]) -> int:
        """How far the plan got: steps whose call succeeded or whose text was said, in order."""
        at = 0
        results = {m.get("tool_call_id"): m for m in messages if m["role"] == "tool"}
        for m in messages[2:]:
            if at >= len(self.plan) or m["role"] != "assistant":
                continue
            kind, step = self.plan[at]
            if m.get("tool_calls"):
                call = m["tool_calls"][0]
                ok = not results[call["id"]]["content"].startswith("Error")
                args = json.loads(call["function"]["arguments"])
                if kind == "call" and ok and call_key(step[0], step[1]) == call_key(call["function"]["name"], args):
                    at += 1
            elif kind == "say" and m.get("content") == step:
                at += 1
        return at

    def agent(self, request: Request) -> Completion:
        """The agent's next turn."""
        messages = request.messages or []
        rng = random.Random(request.seed)
        at = self._position(messages)
        kind, step = self.plan[min(at, len(self.plan) - 1)]
        if kind == "say":
            return self._completion(request, text=step)
        name, arguments, write = step
        draw = rng.random()
        if write is not None and draw < self.p and self.wrong.get(write):
            arguments = rng.choice(self.wrong[write]).arguments
        elif rng.random() < self.q and arguments:
            first = next(iter(arguments))
            arguments = {**arguments, first: BAD_ID}
        call = ToolCall(name=name, arguments=json.dumps(arguments))
        return self._completion(request, call=call)

    def user(self, request: Request) -> Completion:
        """The user's next turn: the instruction first, then yes to a question, else stop."""
        said = [m["content"] for m in request.messages or [] if m["role"] == "user"]  # the agent's words
        if len(said) <= 1:  # the greeting
            text = self.task.instruction
        elif said[-1].endswith("?"):
            text = YES
        else:
            text = STOP
        return self._completion(request, text=text)

    def _completion(self, request: Request, text: str = "", call: ToolCall | None = None) -> Completion:
        body = (
            text if call is None else f'<tool_call>{{"name": "{call.name}", "arguments": {call.arguments}}}</tool_call>'
        )
        return Completion(
            request_id=request.request_id, text=text, tool_calls=[call] if call else [],
            prompt_tokens=self.tokens.prompt(request.messages or [], request.tools),
            completion_tokens=self.tokens.text(body),
        )  # fmt: skip


def play(
    domain: Domain,
    base: BaseDB,
    task: Task,
    script: Scripted,
    *,
    attempt: int = 0,
    seed: int = 0,
    dead_state: str = "off",
    branches: int = 0,
    reachable: frozenset[int] | None = None,
    branch_path: list[tuple[int, int]] | None = None,
    grounding: str = "record",
    max_steps: int = 200,
) -> ConversationResult:
    """Play one conversation of ``task`` with the scripted roles through the real Conversation."""
    if dead_state != "off" and reachable is None:
        reachable = reachable_hashes(domain, base, task.actions)
    sampling = SamplingParams(max_tokens=512, temperature=1.0)
    conv = Conversation(
        conversation_id=f"{task.task_id}#{attempt}", task=task, attempt=attempt, seed=seed, domain=domain,
        state=base.new_state(), policy=domain.policy(), tools=domain.openai_tools(), constraint=None,
        agent_sampling=sampling, user_sampling=sampling, max_steps=max_steps, max_errors=4,
        max_context_tokens=10**9, reachable=reachable, dead_state=dead_state, max_branches=branches,
        branch_path=branch_path,
    )  # fmt: skip
    while not conv.done:
        request = conv.request()
        completion = script.agent(request) if conv.next_role == "agent" else script.user(request)
        conv.apply(completion)
    return conversation_result(conv, "scripted", "scripted-agent", "scripted-user", grounding)

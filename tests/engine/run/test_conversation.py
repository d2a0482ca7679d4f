"""The conversation state machine on bad samples: retries with new seeds, clear terminations, clean speech.

These feed ``Conversation.apply`` the completions a real model produces when it goes wrong (a call
that does not parse, a turn cut off at ``max_tokens``, an empty turn, a role tag inside speech)
and a kernel whose tool body has a bug. The model's behaviour itself is covered by the real-model
lane (tests/engine/run/test_real_model.py); here the exact bookkeeping is pinned.
"""

from __future__ import annotations

import pytest

from engine.backends.base import Completion, SamplingParams, ToolCall
from engine.run.conversation import Conversation
from engine.tasks.synthesis import synthesize
from envs import Domain, State, get_domain
from envs.kernel import tool

GREEDY = SamplingParams(max_tokens=32, temperature=0.0)


@pytest.fixture(scope="module")
def airline() -> tuple[Domain, object, object]:
    dom = get_domain("airline")
    base = dom.from_struct(dom.generate_db(users=30, seed=0))
    tasks, _ = synthesize("airline", base, 1, 0, None)
    return dom, base, tasks[0]


def _conversation(airline: tuple, *, retries: int = 2, domain: Domain | None = None) -> Conversation:
    dom, base, task = airline
    dom = domain or dom
    return Conversation(
        conversation_id="t#0", task=task, attempt=0, seed=7, domain=dom, state=base.new_state(),
        policy="policy", tools=dom.openai_tools(), constraint=None, agent_sampling=GREEDY,
        user_sampling=GREEDY, max_steps=40, max_errors=3, max_context_tokens=8192, max_retries=retries,
    )  # fmt: skip


def _done(text: str, **kw: object) -> Completion:
    return Completion(request_id="x", text=text, prompt_tokens=10, completion_tokens=max(1, len(text.split())), **kw)


def _user_says(conv: Conversation, text: str) -> None:
    assert conv.next_role == "user"
    conv.apply(_done(text))


def test_unparseable_agent_turn_is_sampled_again_then_named(airline: tuple) -> None:
    conv = _conversation(airline)
    _user_says(conv, "I want to cancel my trip.")
    first = conv.request()
    bad = _done('<tool_call>\n{"name": ', finish_reason="stop", error="tool call 1: invalid JSON")
    conv.apply(bad)
    again = conv.request()
    assert conv.termination is None and conv.next_role == "agent"
    assert again.request_id == first.request_id + ".r1" and again.seed != first.seed
    assert first.sampling.temperature == 0.0 and again.sampling.temperature == 0.7  # greedy would repeat itself
    conv.apply(bad)
    assert conv.request().request_id == first.request_id + ".r2"
    conv.apply(bad)
    assert conv.termination == "unparseable_turn" and conv.retried_turns == 2
    assert conv.tokens["agent_completion"] == 3 * bad.completion_tokens  # every sample is paid for


def test_a_good_retry_continues_the_conversation(airline: tuple) -> None:
    conv = _conversation(airline)
    _user_says(conv, "Hello")
    conv.apply(_done("I can help with " * 20, finish_reason="length"))  # cut off at max_tokens
    assert conv.termination is None and conv.retry == 1
    conv.apply(_done("Sure, what is your user id?"))
    assert conv.retry == 0 and conv.next_role == "user"
    assert conv.messages[-1] == {"role": "assistant", "content": "Sure, what is your user id?"}
    assert conv.request().request_id.endswith("/u4")


@pytest.mark.parametrize(
    ("completion", "termination"),
    [
        (_done("word " * 40, finish_reason="length"), "truncated_turn"),
        (_done("   \n", finish_reason="stop"), "empty_turn"),
        (_done('{"name": "x"', finish_reason="length", error="hit max_tokens (32) before the turn ended"),
         "truncated_turn"),
    ],
)
def test_bad_agent_turns_end_with_a_named_reason(airline: tuple, completion: Completion, termination: str) -> None:
    conv = _conversation(airline, retries=0)
    _user_says(conv, "Hello")
    conv.apply(completion)
    assert conv.termination == termination


def test_an_engine_failure_is_not_retried(airline: tuple) -> None:
    conv = _conversation(airline)
    _user_says(conv, "Hello")
    conv.apply(Completion(request_id="x", text="", finish_reason="error", error="llamacpp worker crashed: boom"))
    assert conv.termination == "backend_error" and conv.retried_turns == 0


def test_user_speech_is_cut_at_markup_and_an_empty_user_turn_is_retried(airline: tuple) -> None:
    conv = _conversation(airline, retries=1)
    conv.apply(_done("I need to change my flight.<|im_end|>\n<|im_start|>assistant\nSure"))
    assert conv.messages[-1] == {"role": "user", "content": "I need to change my flight."}
    conv.apply(_done("Your user id?"))
    conv.apply(_done("<tool_call>\n{}"))  # nothing spoken before the markup
    assert conv.termination is None and conv.retry == 1
    conv.apply(_done(""))
    assert conv.termination == "empty_turn"


@tool("write")
def _explode(state: State, reservation_id: str) -> str:
    """A write whose body has a bug.

    Args:
        reservation_id: Any reservation.
    """
    raise KeyError("a bug, not a refusal")


def test_a_kernel_fault_ends_the_conversation_as_kernel_error(airline: tuple, caplog: pytest.LogCaptureFixture) -> None:
    dom = airline[0]
    buggy = Domain("buggy", "BuggyTools", dom.db_type, [_explode], dom.policy_path)
    conv = _conversation(airline, domain=buggy)
    _user_says(conv, "Cancel it.")
    call = ToolCall(name="_explode", arguments='{"reservation_id": "ABC123"}')
    conv.apply(Completion(request_id="x", text="", tool_calls=[call], completion_tokens=9, prompt_tokens=5))
    assert conv.termination == "kernel_error"
    assert conv.messages[-1]["role"] == "tool" and conv.messages[-1]["content"].startswith("Error:")
    assert [r.getMessage() for r in caplog.records] == [
        "kernel fault in t#0: _explode({\"reservation_id\": \"ABC123\"}): KeyError: 'a bug, not a refusal'"
    ]

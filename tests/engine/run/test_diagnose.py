"""Dropped-conversation causes: one per failed result, in priority order, tallied and printed by ``writ stats``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine.records import ConversationResult, RewardParts, encode_result
from engine.run.diagnose import CAUSES, EXCERPT_CHARS, diagnose, explain, summarize_causes
from tests.engine.test_export import airline_result

GREETING = {"role": "assistant", "content": "Hi! How can I help you today?"}
OK = RewardParts(goal_state=1.0, outputs=1.0, evidence=1.0, total=1.0)
NO_GOAL = RewardParts(goal_state=0.0, outputs=1.0, evidence=1.0, total=0.0)
BAGS = '{"reservation_id": "ZFA04Y", "total_baggages": 1, "nonfree_baggages": 1, "payment_id": "credit_card_1"}'


class _Chat:
    """Hand-written messages in the shape a run records them (OpenAI tool calls, tool results)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": "policy"}, GREETING]
        self.n = 0

    def user(self, text: str) -> _Chat:
        self.messages.append({"role": "user", "content": text})
        return self

    def agent(self, text: str) -> _Chat:
        self.messages.append({"role": "assistant", "content": text})
        return self

    def call(self, name: str, arguments: str, output: str) -> _Chat:
        self.n += 1
        call_id = f"call_{self.n}"
        function = {"name": name, "arguments": arguments}
        tool_calls = [{"id": call_id, "type": "function", "function": function}]
        self.messages.append({"role": "assistant", "content": "", "tool_calls": tool_calls})
        self.messages.append({"role": "tool", "tool_call_id": call_id, "name": name, "content": output})
        return self


def _result(
    chat: _Chat,
    termination: str,
    *,
    w: int = 1,
    reward: RewardParts = NO_GOAL,
    failures: list[str] | None = None,
    n: int = 0,
    domain: str = "airline",
) -> ConversationResult:
    return msgspec.structs.replace(
        airline_result(),
        conversation_id=f"c{n}",
        domain=domain,
        passed=False,
        termination=termination,
        w=w,
        reward=reward,
        failures=[] if failures is None else failures,
        turns=sum(m["role"] == "user" for m in chat.messages),
        messages=chat.messages,
    )


def _reads() -> _Chat:
    """A user who asked for a bag and an agent who looked the reservation up."""
    chat = _Chat().user("I'm mia_li_3668 and I need one more checked bag on ZFA04Y.")
    chat.call("get_user_details", '{"user_id": "mia_li_3668"}', '{"user_id": "mia_li_3668", "name": "Mia Li"}')
    return chat.call("get_reservation_details", '{"reservation_id": "ZFA04Y"}', '{"reservation_id": "ZFA04Y"}')


def _wrote(output: str = '{"reservation_id": "ZFA04Y", "total_baggages": 1}') -> _Chat:
    chat = _reads().agent("One more bag costs $50 on credit_card_1. Shall I go ahead?").user("Yes please.")
    return chat.call("update_reservation_baggages", BAGS, output).agent("Done.")


def test_passed_has_no_cause() -> None:
    assert diagnose(airline_result()) is None
    assert explain(airline_result()) is None


@pytest.mark.parametrize(
    ("termination", "cause"),
    [
        ("backend_error", "backend_error"),
        ("unparseable_turn", "agent_format"),
        ("empty_turn", "agent_format"),
        ("truncated_turn", "agent_truncated"),
        ("context_limit", "context_limit"),
        ("max_turns", "turn_limit"),
        ("max_errors", "tool_errors"),
    ],
)
def test_termination_causes(termination: str, cause: str) -> None:
    chat = _reads().agent("Let me check that for you.").user("Ok.")
    assert diagnose(_result(chat, termination)) == cause


def test_kernel_error_shows_the_tool_error() -> None:
    chat = _reads().call("update_reservation_baggages", BAGS, "Error: 'NoneType' object has no attribute 'id'")
    assert explain(_result(chat, "kernel_error")) == ("kernel_error", "Error: 'NoneType' object has no attribute 'id'")


def test_format_failures_outrank_the_user() -> None:
    """A broken agent turn is the cause even when the user also misbehaved."""
    chat = _Chat().user("Hi! How can I help you today?")
    assert diagnose(_result(chat, "unparseable_turn")) == "agent_format"
    assert diagnose(_result(chat, "max_turns")) == "user_off_script"


def test_agent_no_tools_needs_a_write_task() -> None:
    chat = _Chat().user("I need one more bag on ZFA04Y, I'm mia_li_3668.")
    chat.agent("Sure, what is your user id?").user("mia_li_3668.").agent("And the reservation?").user("ZFA04Y!")
    assert explain(_result(chat, "max_turns", w=2)) == ("agent_no_tools", "last agent message: And the reservation?")
    assert diagnose(_result(chat, "max_turns", w=0)) == "turn_limit"
    assert diagnose(_result(chat, "max_errors", w=2)) == "agent_no_tools"
    assert diagnose(_result(chat, "context_limit", w=2)) == "context_limit"


@pytest.mark.parametrize(
    ("name", "chat", "termination", "reward", "excerpt"),
    [
        ("out of scope", _reads().user("###OUT-OF-SCOPE###"), "out_of_scope", NO_GOAL, "user ended out of scope"),
        (
            "transfer the agent did not make",
            _reads().user("###TRANSFER###"),
            "transfer",
            NO_GOAL,
            "user wrote ###TRANSFER### though the agent did not transfer",
        ),
        ("echo", _reads().agent("Anything else?").user("Hi! How can I help you today?"), "max_turns", NO_GOAL,
         "user echoed the agent: Hi! How can I help you today?"),
        ("swapped roles", _reads().agent("Found it.").user("Thank you! How may I assist you further?"), "max_errors",
         NO_GOAL, "user spoke as the agent"),
        ("silent", _reads().agent("Found it.").user(""), "max_turns", NO_GOAL, "user said nothing"),
        ("stop at once", _Chat().user("###STOP###"), "user_stop", NO_GOAL, "user stopped before the agent could act"),
        (
            "stop after one agent turn",  # not agent_no_tools: the agent had one turn, and asked what it needed
            _Chat().user("I need one more bag.").agent("Sure, what is your user id?").user("Bye ###STOP###"),
            "user_stop",
            NO_GOAL,
            "user stopped before the agent could act: Bye ###STOP###",
        ),
        ("never stopped", _wrote().user("Great, thanks again!"), "max_turns", OK, "goal reached but the user never"),
        (
            "stop on a question",
            _reads().agent("One more bag costs $50. Shall I charge credit_card_1?").user("###STOP###"),
            "user_stop",
            NO_GOAL,
            "user stopped on the agent's question: One more bag costs $50. Shall I charge credit_card_1?",
        ),
    ],
)
def test_user_off_script(name: str, chat: _Chat, termination: str, reward: RewardParts, excerpt: str) -> None:
    cause, text = explain(_result(chat, termination, reward=reward)) or ("", "")
    assert cause == "user_off_script", name
    assert text.startswith(excerpt), (name, text)


def test_user_is_not_blamed_for_the_agent() -> None:
    """A transfer the agent made, a stop after "anything else?" and a write then a stop are the agent's doing."""
    transferred = _reads().call("transfer_to_human_agents", '{"summary": "bags"}', "Transfer successful")
    assert diagnose(_result(transferred.user("###TRANSFER###"), "transfer")) == "missing_write"
    refused = _reads().agent("Basic economy has no free bags. Is there anything else?").user("###STOP###")
    assert diagnose(_result(refused, "user_stop", failures=["missing_write:update_reservation_baggages"])) == (
        "missing_write"
    )
    wrote = _wrote().agent("Anything else I can do?").user("###STOP###")
    assert diagnose(_result(wrote, "user_stop", failures=["wrong_argument:update_reservation_baggages"])) == (
        "wrong_write"
    )
    # repeating a short agent phrase is no echo
    assert diagnose(_result(_reads().agent("Sure.").user("Sure. Add one bag to ZFA04Y."), "max_turns")) == "turn_limit"
    # a long stay past the goal is the user's doing only when the goal was reached
    assert diagnose(_result(_wrote().user("And?"), "max_turns", reward=NO_GOAL)) == "turn_limit"


def test_verification_causes() -> None:
    wrote = _wrote().user("###STOP###")
    failed_write = _wrote("Error: Certificate cannot be used to update reservation").user("###STOP###")
    goal = ["wrong_argument:update_reservation_baggages"]
    assert explain(_result(wrote, "user_stop", failures=goal)) == ("wrong_write", goal[0])
    assert explain(_result(failed_write, "user_stop", failures=["missing_write:x"])) == (
        "missing_write",
        "missing_write:x",
    )
    # the reward alone says the goal failed, whatever the failure strings
    assert diagnose(_result(failed_write, "user_stop", failures=[])) == "missing_write"
    evidence = RewardParts(goal_state=1.0, outputs=1.0, evidence=0.0, total=0.0)
    both = RewardParts(goal_state=1.0, outputs=0.0, evidence=0.0, total=0.0)
    output = RewardParts(goal_state=1.0, outputs=0.0, evidence=1.0, total=0.0)
    stopped = _wrote().user("###STOP###")
    ev = ["evidence_not_read:update_reservation_baggages"]
    assert explain(_result(stopped, "user_stop", reward=evidence, failures=ev)) == ("evidence_not_read", ev[0])
    assert diagnose(_result(stopped, "user_stop", reward=both, failures=["missing_output", *ev])) == "evidence_not_read"
    assert explain(_result(stopped, "user_stop", reward=output, failures=["missing_output"])) == (
        "missing_output",
        "missing_output; last agent message: Done.",
    )


def test_writes_come_from_the_domain() -> None:
    """A retail write counts as a write; an unknown domain falls back to tool-name prefixes."""
    chat = _Chat().user("Cancel order #W2378156.").call(
        "cancel_pending_order", '{"order_id": "#W2378156", "reason": "no longer needed"}', '{"status": "cancelled"}'
    )
    chat.agent("Cancelled.").user("###STOP###")
    assert diagnose(_result(chat, "user_stop", domain="retail", failures=["extra_write:cancel_pending_order"])) == (
        "wrong_write"
    )
    # airline has no cancel_pending_order: a call to a tool the domain lacks is no write
    assert diagnose(_result(chat, "user_stop", domain="airline", failures=["goal_state_mismatch"])) == "missing_write"
    assert diagnose(_result(chat, "user_stop", domain="telecom", failures=["goal_state_mismatch"])) == "wrong_write"


def test_unknown_termination_is_other() -> None:
    chat = _reads().agent("Done.").user("###STOP###")
    assert explain(_result(chat, "asteroid", reward=OK)) == ("other", "asteroid: Done.")


def test_causes_table() -> None:
    assert list(CAUSES) == [
        "backend_error", "kernel_error", "agent_format", "agent_truncated", "user_off_script", "context_limit",
        "agent_no_tools", "turn_limit", "tool_errors", "wrong_write", "missing_write", "evidence_not_read",
        "missing_output", "ungrounded", "other",
    ]  # fmt: skip
    assert all(advice and "\n" not in advice for advice in CAUSES.values())


def _mixed() -> list[ConversationResult]:
    """One passed and six dropped: three out of turns, two with no tool call, one wrong write."""
    long_text = "I am checking every flight on your reservation,\nplease hold on " + "and wait " * 30
    no_tools = _Chat().user("One more bag please.").agent("Sure.").user("So?").agent(long_text).user("Hm.")
    wrong = _wrote().user("###STOP###")
    return [
        airline_result(),
        *(_result(_reads().agent("Let me check.").user("Ok."), "max_turns", n=i) for i in range(1, 4)),
        _result(no_tools, "max_turns", n=4),
        _result(no_tools, "user_stop", n=5),
        _result(wrong, "user_stop", failures=["wrong_argument:update_reservation_baggages"], n=6),
    ]


def test_summarize_causes() -> None:
    rows = summarize_causes(_mixed())
    assert [(r["cause"], r["count"], r["share"]) for r in rows] == [
        ("turn_limit", 3, 0.5),
        ("agent_no_tools", 2, 2 / 6),
        ("wrong_write", 1, 1 / 6),
    ]
    assert rows[0]["advice"] == CAUSES["turn_limit"]
    assert rows[0]["example"] == {"conversation_id": "c1", "excerpt": "2 turns: Let me check."}
    excerpt = rows[1]["example"]["excerpt"]
    assert rows[1]["example"]["conversation_id"] == "c4"
    assert EXCERPT_CHARS - 3 <= len(excerpt) <= EXCERPT_CHARS and excerpt.endswith("...") and "\n" not in excerpt
    assert excerpt.startswith("last agent message: I am checking every flight on your reservation, please hold on")
    assert summarize_causes([airline_result()]) == []
    assert summarize_causes([]) == []


def test_writ_stats_prints_the_table(tmp_path: Path) -> None:
    (tmp_path / "results.jsonl").write_bytes(b"".join(encode_result(r) + b"\n" for r in _mixed()))
    cli = [sys.executable, "-c", "from engine.cli import main; main()", "stats", str(tmp_path)]
    out = subprocess.run([*cli, "--no-plots"], capture_output=True, text=True, timeout=120, check=True).stdout
    lines = out.splitlines()
    at = lines.index("why conversations were dropped:")
    assert lines[at + 1].split() == ["cause", "count", "share", "what", "to", "change"]
    assert lines[at + 2].startswith("  turn_limit           3   50.0%  the conversation ran out of turns")
    assert lines[at + 3].split()[:4] == ["e.g.", "c1:", "2", "turns:"]
    assert lines[at + 4].startswith("  agent_no_tools       2   33.3%  the agent never called a tool")
    assert lines[at + 6].startswith("  wrong_write          1   16.7%  ")
    assert lines[at + 7].endswith("e.g.  c6: wrong_argument:update_reservation_baggages")
    assert lines[at + 8] == ""
    data = json.loads(subprocess.run([*cli, "--json", "--no-plots"], capture_output=True, text=True, check=True).stdout)
    assert [(r["cause"], r["count"]) for r in data["dropped"]] == [
        ("turn_limit", 3),
        ("agent_no_tools", 2),
        ("wrong_write", 1),
    ]

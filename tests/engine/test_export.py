"""SFT export: record shape, one-line errors, exact round trips through datasets and Parquet, TRL SFT."""

from __future__ import annotations

import importlib
import json
import math
import os
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine.export import (
    SFT_COLUMNS,
    ExportError,
    arguments_as_objects,
    encode_trajectory,
    read_results,
    trajectory_record,
    write_parquet,
    write_trajectories,
)
from engine.records import ConversationResult, RewardParts, TokenCounts, encode_result
from engine.tasks.model import Behavior
from envs import get_domain

IN_CI = os.environ.get("CI") == "true"


def _optional(module: str) -> Any:
    """Import a piece of the ``train`` extra; skip when absent, except in CI where that fails."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if IN_CI:
            pytest.fail(f"{module} is required when CI=true (pip install 'writ[train]')")
        pytest.skip(f"{module} is not installed (pip install 'writ[train]')")


def _call(i: int, name: str, arguments: str) -> dict[str, Any]:
    return {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": arguments}}


class _Chat:
    """Builds a conversation whose tool results come from the real environment kernel."""

    def __init__(self, domain: str, seed: int) -> None:
        self.dom = get_domain(domain)
        self.db = self.dom.generate_db(users=5, seed=seed)
        self.state = self.dom.from_struct(self.db).new_state()
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": self.dom.policy()}]
        self.calls = 0

    def say(self, role: str, content: str) -> None:
        self.messages.append({"role": role, "content": content})

    def call(self, content: str | None, *calls: tuple[str, str]) -> None:
        ids = list(range(self.calls, self.calls + len(calls)))
        self.calls += len(calls)
        self.messages.append(
            {
                "role": "assistant",
                "content": content,
                "tool_calls": [_call(i, n, a) for i, (n, a) in zip(ids, calls, strict=True)],
            }
        )
        for i, (name, arguments) in zip(ids, calls, strict=True):
            output = self.dom.call(self.state, name, arguments).output
            self.messages.append({"role": "tool", "tool_call_id": f"call_{i}", "content": output})


def _result(
    chat: _Chat, n: int, *, passed: bool, w: int, e: int, termination: str, **behavior: Any
) -> ConversationResult:
    fields = {"disclosure": "all_at_once", "tone": "neutral", "verbosity": "normal", "seed": n, **behavior}
    reward = 1.0 if passed else 0.0
    return ConversationResult(
        conversation_id=f"{chat.dom.name}-{n:04d}-a0",
        task_id=f"{chat.dom.name}-{n:04d}",
        attempt=0,
        domain=chat.dom.name,
        trajectory_type="write-intensive" if w >= 3 else "read-heavy" if e >= 4 else "normal",
        w=w,
        e=e,
        behavior=msgspec.structs.asdict(Behavior(**fields)),
        passed=passed,
        reward=RewardParts(goal_state=reward, outputs=1.0, evidence=reward, total=reward),
        failures=[] if passed else ["goal_state: reservation differs"],
        termination=termination,
        turns=sum(m["role"] == "user" for m in chat.messages),
        messages=chat.messages,
        tools=chat.dom.openai_tools(),
        tokens=TokenCounts(
            agent_prompt=9000 + n, agent_cached=8000, agent_completion=310 + n, user_prompt=2100, user_completion=95
        ),
        backend="llamacpp",
        agent_model="qwen3-8b-q4_k_m.gguf",
        user_model="qwen3-8b-q4_k_m.gguf",
        seed=n,
        final_hash=f"{n:016x}",
        seconds=12.5 + n,
    )


def airline_result(n: int = 1, passed: bool = True) -> ConversationResult:
    """A write conversation: reads, parallel calls, a bag added with the real kernel, unicode text."""
    chat = _Chat("airline", seed=n)
    user_id = sorted(chat.db.users)[0]
    user = chat.db.users[user_id]
    rid = user.reservations[0]
    flight = chat.db.reservations[rid].flights[0]
    payment = sorted(user.payment_methods)[0]
    chat.say("user", f"Hi! I'm {user_id} and I'd like one more checked bag on {rid}. Merci — café au lait ☕")
    chat.call(None, ("get_user_details", json.dumps({"user_id": user_id})))
    chat.call("Let me pull up that reservation.", ("get_reservation_details", f'{{"reservation_id":"{rid}"}}'))
    chat.call(
        None,
        ("get_flight_status", json.dumps({"flight_number": flight.flight_number, "date": flight.date})),
        ("calculate", '{"expression": "50 * 1"}'),
    )
    chat.say("assistant", f"One extra bag costs $50, charged to {payment}. Shall I go ahead?")
    chat.say("user", "Yes please.")
    bags = {"reservation_id": rid, "total_baggages": 1, "nonfree_baggages": 1, "payment_id": payment}
    chat.call(None, ("update_reservation_baggages", json.dumps(bags)))
    chat.say("assistant", "Done: your reservation now has one checked bag.")
    chat.say("user", "Thanks, that's all.")
    return _result(chat, n, passed=passed, w=1, e=3, termination="user_stop", tone="friendly")


def retail_result(n: int = 2) -> ConversationResult:
    """A read conversation with a refused call whose arguments hold a 16-digit float."""
    chat = _Chat("retail", seed=n)
    user = chat.db.users[sorted(chat.db.users)[0]]
    order_id = user.orders[0]
    chat.say("user", f"Where is my order? My email is {user.email}.")
    chat.call(None, ("find_user_id_by_email", json.dumps({"email": user.email})))
    chat.call(None, ("get_order_details", json.dumps({"order_id": order_id})))
    chat.call(None, ("get_product_details", '{"product_id": "6086499569", "price": 0.1234567890123456}'))
    chat.say("assistant", f"Order {order_id} is on its way.")
    chat.say("user", "Great, thanks.")
    chat.say("assistant", "You're welcome!")
    return _result(chat, n, passed=True, w=0, e=4, termination="user_stop", verbosity="terse", mind_change=True)


def failed_result(n: int = 3) -> ConversationResult:
    """A conversation that ran out of turns."""
    chat = _Chat("airline", seed=n)
    chat.say("user", "I want to cancel something.")
    chat.say("assistant", "Could you give me your user id?")
    return _result(chat, n, passed=False, w=2, e=1, termination="max_turns", tone="impatient")


@pytest.fixture(scope="module")
def results() -> list[ConversationResult]:
    return [airline_result(), retail_result(), failed_result()]


@pytest.fixture(scope="module")
def trajectories(results: list[ConversationResult], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """trajectories.jsonl of every result (passing or not), written from a results.jsonl."""
    run = tmp_path_factory.mktemp("run")
    (run / "results.jsonl").write_bytes(b"".join(encode_result(r) + b"\n" for r in results))
    assert write_trajectories(run / "results.jsonl", run / "trajectories.jsonl", passed_only=False) == 3
    return run / "trajectories.jsonl"


def _file_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_record_literal() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Cancel ZFA04Y."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [_call(0, "cancel_reservation", '{"reservation_id": "ZFA04Y"}')],
        },
        {"role": "tool", "tool_call_id": "call_0", "content": '{"status": "cancelled"}'},
        {"role": "assistant", "content": "Cancelled."},
    ]
    tools = [t for t in get_domain("airline").openai_tools() if t["function"]["name"] == "cancel_reservation"]
    result = msgspec.structs.replace(airline_result(), messages=messages, tools=tools)
    record = trajectory_record(result)
    assert record["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Cancel ZFA04Y."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_0",
                    "type": "function",
                    "function": {"name": "cancel_reservation", "arguments": '{"reservation_id": "ZFA04Y"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_0", "name": "cancel_reservation", "content": '{"status": "cancelled"}'},
        {"role": "assistant", "content": "Cancelled."},
    ]
    assert record["tools"] == json.dumps(tools, ensure_ascii=False)
    assert {k: v for k, v in record.items() if k not in ("messages", "tools")} == {
        "domain": "airline",
        "trajectory_type": "normal",
        "w": 1,
        "e": 3,
        "task_id": "airline-0001",
        "conversation_id": "airline-0001-a0",
        "attempt": 0,
        "passed": True,
        "reward": {"goal_state": 1.0, "outputs": 1.0, "evidence": 1.0, "total": 1.0, "grounded": 1.0},
        "termination": "user_stop",
        "turns": 3,
        "tokens": {
            "agent_prompt": 9001,
            "agent_cached": 8000,
            "agent_completion": 311,
            "user_prompt": 2100,
            "user_cached": 0,
            "user_completion": 95,
        },
        "behavior": {
            "disclosure": "all_at_once",
            "tone": "friendly",
            "verbosity": "normal",
            "mind_change": False,
            "wrong_then_corrected": False,
            "out_of_order": False,
            "seed": 1,
        },
        "backend": "llamacpp",
        "agent_model": "qwen3-8b-q4_k_m.gguf",
        "user_model": "qwen3-8b-q4_k_m.gguf",
        "seed": 1,
        "final_hash": "0000000000000001",
        "texts": {},
    }
    assert tuple(record) == SFT_COLUMNS
    doc = (Path(__file__).resolve().parents[2] / "docs" / "data_format.md").read_text(encoding="utf-8")
    assert json.loads(doc.split("```json\n", 1)[1].split("```", 1)[0]) == record


def test_record_keeps_every_turn(results: list[ConversationResult]) -> None:
    for result in results:
        record = trajectory_record(result)
        assert len(record["messages"]) == len(result.messages)
        assert json.loads(record["tools"]) == get_domain(result.domain).openai_tools()
        for before, after in zip(result.messages, record["messages"], strict=True):
            assert after["role"] == before["role"]
            assert after["content"] == (before["content"] or "")
            assert after.get("tool_calls", []) == (before.get("tool_calls") or [])
    tool_names = [m["name"] for m in trajectory_record(results[0])["messages"] if m["role"] == "tool"]
    assert tool_names == [
        "get_user_details",
        "get_reservation_details",
        "get_flight_status",
        "calculate",
        "update_reservation_baggages",
    ]


def _broken(messages: list[dict[str, Any]]) -> ConversationResult:
    return msgspec.structs.replace(failed_result(), conversation_id="c9", messages=messages)


_CALL = _call(0, "calculate", '{"expression": "1 + 1"}')
_OBJECT_ARGS = {**_CALL, "function": {"name": "calculate", "arguments": {"expression": "1 + 1"}}}
_BAD = [
    (
        [{"role": "assistant", "content": None, "tool_calls": [_OBJECT_ARGS]}],
        "conversation c9 message 0.tool_calls[0]: tool-call arguments must be a JSON string, got dict",
    ),
    (
        [{"role": "assistant", "content": "", "tool_calls": [_call(0, "calculate", '{"expression": ')]}],
        """conversation c9 message 0.tool_calls[0]: tool-call arguments are not a JSON object: '{"expression": '""",
    ),
    (
        [{"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": _CALL["function"]}]}],
        "conversation c9 message 0.tool_calls[0]: a tool call needs a non-empty string `id`",
    ),
    (
        [{"role": "tool", "tool_call_id": "call_7", "content": "2"}],
        "conversation c9 message 0: tool result for unknown tool_call_id 'call_7'",
    ),
    (
        [
            {"role": "assistant", "content": None, "tool_calls": [_CALL]},
            {"role": "tool", "tool_call_id": "call_0", "name": "get_user_details", "content": "2"},
        ],
        "conversation c9 message 1: tool result names 'get_user_details' but call 'call_0' was 'calculate'",
    ),
    (
        [{"role": "assistant", "content": None, "tool_calls": [_CALL, _CALL]}],
        "conversation c9 message 0: tool-call id 'call_0' is used twice",
    ),
    (
        [{"role": "developer", "content": "x"}],
        "conversation c9 message 0: role must be one of system, user, assistant, tool, got 'developer'",
    ),
    (
        [{"role": "user", "content": "x", "reasoning": "y"}],
        "conversation c9 message 0: unexpected keys ['reasoning'] in a user message",
    ),
    ([{"role": "user", "content": None}], "conversation c9 message 0: content must be a string, got NoneType"),
    (
        [{"role": "assistant", "content": None}],
        "conversation c9 message 0: an assistant message needs content or tool calls",
    ),
    ([], "conversation c9: no messages"),
    (
        [{"role": "assistant", "content": "", "tool_calls": _CALL}],
        "conversation c9 message 0: tool_calls must be a list, got dict",
    ),
]


@pytest.mark.parametrize(("messages", "error"), _BAD, ids=[e.split(": ", 1)[1][:40] for _, e in _BAD])
def test_bad_messages_raise_one_line(messages: list[dict[str, Any]], error: str) -> None:
    with pytest.raises(ExportError) as info:
        trajectory_record(_broken(messages))
    assert str(info.value) == error


def test_bad_tools_raise_one_line() -> None:
    result = msgspec.structs.replace(failed_result(), tools=[{"name": "calculate"}])
    with pytest.raises(ExportError) as info:
        trajectory_record(result)
    assert str(info.value) == "conversation airline-0003-a0: tools[0] is not an OpenAI function schema"


def test_read_results_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_bytes(encode_result(failed_result()) + b"\n\n" + b'{"conversation_id": "x"}\n')
    with pytest.raises(ExportError) as info:
        read_results(path)
    assert str(info.value).startswith(f"{path}:3: not a ConversationResult: Object missing required field")
    assert "\n" not in str(info.value)
    path.write_bytes(encode_result(failed_result()) + b"\n")
    assert read_results(path) == [failed_result()]
    path.write_bytes(encode_result(failed_result()) + b"\n" + encode_result(failed_result())[:40])
    assert read_results(path) == [failed_result()]  # a crash-cut last line was never acknowledged


def test_write_trajectories_keeps_passing_sorted(results: list[ConversationResult], tmp_path: Path) -> None:
    (tmp_path / "results.jsonl").write_bytes(b"".join(encode_result(r) + b"\n" for r in reversed(results)))
    assert write_trajectories(tmp_path / "results.jsonl", tmp_path / "t.jsonl") == 2
    assert (tmp_path / "t.jsonl").read_bytes() == b"".join(encode_trajectory(r) + b"\n" for r in results[:2])


def test_arguments_as_objects(results: list[ConversationResult]) -> None:
    messages = trajectory_record(results[1])["messages"]
    converted = arguments_as_objects(messages)
    refused = converted[6]["tool_calls"][0]["function"]["arguments"]
    assert refused == {"product_id": "6086499569", "price": 0.1234567890123456}
    assert messages[6]["tool_calls"][0]["function"]["arguments"].startswith('{"product_id"')  # input unchanged
    assert [m["role"] for m in converted] == [m["role"] for m in messages]


def test_datasets_json_round_trip_is_exact(trajectories: Path) -> None:
    datasets = _optional("datasets")
    datasets.disable_progress_bars()
    loaded = datasets.load_dataset("json", data_files=str(trajectories), split="train")
    assert loaded.features["tools"] == datasets.Value("string")
    assert loaded.to_list() == _file_records(trajectories)
    # The struct-merging loader (on_mixed_types=None, as in datasets < 5 and plain pyarrow) fills
    # missing message keys with null, but tools and arguments stay exact strings.
    merged = datasets.load_dataset("json", data_files=str(trajectories), split="train", on_mixed_types=None)
    for got, want in zip(merged.to_list(), _file_records(trajectories), strict=True):
        assert got["tools"] == want["tools"]
        calls = [c for m in got["messages"] for c in m["tool_calls"] or []]
        assert calls == [c for m in want["messages"] for c in m.get("tool_calls", [])]


def test_object_arguments_would_not_round_trip(trajectories: Path, tmp_path: Path) -> None:
    """Why arguments are strings: datasets' Json type re-encodes objects at 10 decimal digits."""
    datasets = _optional("datasets")
    datasets.disable_progress_bars()
    records = _file_records(trajectories)
    for record in records:
        record["messages"] = arguments_as_objects(record["messages"])
    (tmp_path / "objects.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    loaded = datasets.load_dataset("json", data_files=str(tmp_path / "objects.jsonl"), split="train").to_list()
    retail = [r["domain"] for r in records].index("retail")
    assert records[retail]["messages"][6]["tool_calls"][0]["function"]["arguments"]["price"] == 0.1234567890123456
    price = loaded[retail]["messages"][6]["tool_calls"][0]["function"]["arguments"]["price"]
    assert price != 0.1234567890123456 and abs(price - 0.123456789) < 1e-15  # cut to 10 decimals
    objects = str(tmp_path / "objects.jsonl")
    merged = datasets.load_dataset("json", data_files=objects, split="train", on_mixed_types=None)
    first_call = merged[0]["messages"][2]["tool_calls"][0]["function"]
    assert first_call["name"] == "get_user_details"
    assert first_call["arguments"]["reservation_id"] is None  # another call's key, filled with null


def test_parquet_round_trip_is_exact(trajectories: Path, tmp_path: Path) -> None:
    datasets = _optional("datasets")
    pq = _optional("pyarrow.parquet")
    datasets.disable_progress_bars()
    out = tmp_path / "trajectories.parquet"
    assert write_parquet(trajectories, out) == 3
    assert pq.read_metadata(out).num_rows == 3
    loaded = datasets.load_dataset("parquet", data_files=str(out), split="train")
    assert loaded.to_list() == _file_records(trajectories)
    assert list(loaded.features) == list(SFT_COLUMNS)


def test_write_parquet_bad_input(tmp_path: Path) -> None:
    _optional("datasets")
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"messages": []}\n{"messages": \n')
    with pytest.raises(ExportError, match=r"t\.jsonl:1: not an SFT record \(keys \['messages'\]\)$"):
        write_parquet(bad, tmp_path / "t.parquet")
    record = {column: None for column in SFT_COLUMNS} | {"messages": [], "tools": "[]", "w": "three"}
    bad.write_text(json.dumps(record) + "\n")
    with pytest.raises(ExportError) as info:
        write_parquet(bad, tmp_path / "t.parquet")
    assert str(info.value) == (
        f"{bad}: a record does not fit the SFT columns: invalid literal for int() with base 10: 'three'"
    )
    bad.write_text('{"messages": \n')
    with pytest.raises(ExportError, match=r"t\.jsonl:1: not JSON: "):
        write_parquet(bad, tmp_path / "t.parquet")
    assert not (tmp_path / "t.parquet").exists()


def test_trl_sft_trains_on_the_records_unchanged(
    results: list[ConversationResult], tmp_path: Path
) -> None:
    """Two SFT steps on CPU with the tiny test model; the tokens equal the template's own rendering."""
    datasets = _optional("datasets")
    torch = _optional("torch")
    trl = _optional("trl")
    from engine.testmodel import build_test_models

    datasets.disable_progress_bars()
    paths = build_test_models(tmp_path / "models", seed=0, vocab="small", formats=("hf",), hf_dtype="float32")
    data = tmp_path / "trajectories.jsonl"
    data.write_bytes(b"".join(encode_trajectory(r) + b"\n" for r in results[:2]))
    dataset = datasets.load_dataset("json", data_files=str(data), split="train")
    args = trl.SFTConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        per_device_train_batch_size=1,
        learning_rate=1e-3,
        max_length=None,  # keep whole conversations: the tool calls come after a long prompt
        bf16=False,
        activation_checkpointing=False,
        use_cpu=True,
        save_strategy="no",
        report_to=[],
        logging_steps=1,
        disable_tqdm=True,
        seed=0,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a busy 2-core machine one thread is ~3x faster than two
    try:
        trainer = trl.SFTTrainer(model=str(paths["hf"]), args=args, train_dataset=dataset)
        tokenizer = trainer.processing_class
        for row, result in zip(trainer.train_dataset, results[:2], strict=True):
            expected = tokenizer.apply_chat_template(
                result.messages,
                tools=result.tools,
                tokenize=True,
                return_dict=False,
            )
            assert row["input_ids"] == expected
        text = tokenizer.decode(trainer.train_dataset[0]["input_ids"])
        rid = results[0].messages[4]["tool_calls"][0]["function"]["arguments"]
        assert f'<tool_call>\n{{"name": "get_reservation_details", "arguments": {rid}}}\n</tool_call>' in text
        assert json.dumps(results[0].tools[0], ensure_ascii=False) in text
        output = trainer.train()
    finally:
        torch.set_num_threads(threads)
    assert output.global_step == 2
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)


def test_empty_trajectory_file_gives_an_empty_typed_parquet(tmp_path: Path) -> None:
    if os.environ.get("CI") != "true":
        pytest.importorskip("datasets")
    parquet = importlib.import_module("pyarrow.parquet")
    jsonl = tmp_path / "trajectories.jsonl"
    jsonl.write_bytes(b"")
    assert write_parquet(jsonl, tmp_path / "t.parquet") == 0
    table = parquet.read_table(tmp_path / "t.parquet")
    assert table.num_rows == 0 and table.column_names == list(SFT_COLUMNS)

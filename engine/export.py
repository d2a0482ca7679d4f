"""SFT export: a finished conversation as one training record (JSONL), and JSONL to Parquet.

It does not run or judge conversations; it reshapes ``ConversationResult``s (``engine.records``)
into records that ``datasets.load_dataset("json", ...)`` loads and TRL's ``SFTTrainer`` trains on
without changes. The format, with literal records, is in docs/data_format.md. One record::

    {"messages": [{"role": "system", "content": "<policy>"},
                  {"role": "user", "content": "Hi, I want to cancel ..."},
                  {"role": "assistant", "content": "",
                   "tool_calls": [{"id": "call_0", "type": "function",
                                   "function": {"name": "get_user_details",
                                                "arguments": "{\\"user_id\\": \\"mia_li_3668\\"}"}}]},
                  {"role": "tool", "tool_call_id": "call_0", "name": "get_user_details", "content": "{...}"},
                  {"role": "assistant", "content": "Done."}],
     "tools": "[{\\"type\\": \\"function\\", \\"function\\": {...}}, ...]",
     "domain": "<domain>", "trajectory_type": "write-intensive", "w": 3, "e": 2, "task_id": "...", ...}

Two fixed forms, chosen by testing datasets 5.2 and TRL 1.16 (tests/engine/test_export.py):

* Tool-call ``arguments`` are a JSON **string** (OpenAI's form), never an object. The datasets JSON
  loader stores heterogeneous objects as its ``Json`` type, which re-encodes them with pandas'
  ujson at 10 decimal digits: ``0.1234567890123456`` comes back as ``0.123456789`` and ``1e-12``
  as ``0.0``; older loaders and plain pyarrow instead merge all argument objects into one struct and
  fill every missing key with null. A string is one Arrow type and comes back byte for byte, and
  chat templates that accept strings (Hermes/Qwen3 style, the test models') copy it verbatim, so
  the trained bytes are the bytes the agent emitted. Templates that always apply ``tojson`` to
  arguments (Llama 3.1, Qwen2.5) need objects: ``arguments_as_objects`` converts a message list.
* ``tools`` is a JSON **string** holding the list of OpenAI function schemas. TRL's trainers
  ``json.loads`` a string ``tools`` column (TRL PR #5118 made it the preferred form); a list of
  objects round-trips through the datasets JSON loader only while every schema shares the same
  keys and holds no float, and plain pyarrow/Parquet readers merge the ``properties`` of all tools
  into one null-filled struct.

Assistant ``content`` is always a string (``""`` for a turn that only calls tools), and every tool
result names its function (``name``) beside its ``tool_call_id``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from engine.files import replacing, write_atomic
from engine.records import ConversationResult, RewardParts, decode_result

if TYPE_CHECKING:
    import datasets

__all__ = [
    "SFT_COLUMNS",
    "ExportError",
    "arguments_as_objects",
    "encode_trajectory",
    "read_results",
    "sft_features",
    "trajectory_record",
    "write_parquet",
    "write_trajectories",
    "write_trajectory_records",
]

# The token counts an SFT record carries (the run's results.jsonl also has later-turn counts).
SFT_TOKEN_FIELDS = ("agent_prompt", "agent_cached", "agent_completion", "user_prompt", "user_cached", "user_completion")

SFT_COLUMNS = (
    "messages",
    "tools",
    "domain",
    "trajectory_type",
    "w",
    "e",
    "task_id",
    "conversation_id",
    "attempt",
    "passed",
    "reward",
    "termination",
    "turns",
    "tokens",
    "behavior",
    "backend",
    "agent_model",
    "user_model",
    "seed",
    "final_hash",
    "texts",
)
_KEYS = {
    "system": {"role", "content"},
    "user": {"role", "content"},
    "assistant": {"role", "content", "tool_calls"},
    "tool": {"role", "tool_call_id", "name", "content"},
}
_TRAIN_EXTRA = "pip install 'writ[train]'"


class ExportError(ValueError):
    """A record that cannot be exported; the message is one line and names the record."""


def _need(what: str) -> Any:
    """Import an optional library of the ``train`` extra, or say how to install it."""
    try:
        return importlib.import_module(what)
    except ImportError:
        raise ImportError(f"Parquet export needs {what}: {_TRAIN_EXTRA}") from None


def _tool_call(call: Any, where: str) -> dict[str, Any]:
    """One assistant tool call in the fixed form, or an ExportError."""
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise ExportError(f"{where}: a tool call must be an object with a `function` object")
    fn = call["function"]
    extra = set(call) - {"id", "type", "function"} or set(fn) - {"name", "arguments"}
    if extra:
        raise ExportError(f"{where}: unexpected tool-call keys {sorted(extra)}")
    if not isinstance(call.get("id"), str) or not call["id"]:
        raise ExportError(f"{where}: a tool call needs a non-empty string `id`")
    if call.get("type", "function") != "function":
        raise ExportError(f"{where}: tool-call type must be 'function', got {call['type']!r}")
    if not isinstance(fn.get("name"), str) or not fn["name"]:
        raise ExportError(f"{where}: a tool call needs a non-empty string function `name`")
    arguments = fn.get("arguments")
    if not isinstance(arguments, str):
        raise ExportError(
            f"{where}: tool-call arguments must be a JSON string, got {type(arguments).__name__}"
        )
    try:
        parsed = json.loads(arguments)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ExportError(f"{where}: tool-call arguments are not a JSON object: {arguments[:80]!r}")
    return {"id": call["id"], "type": "function", "function": {"name": fn["name"], "arguments": arguments}}


def _message(message: Any, where: str, calls: dict[str, str]) -> dict[str, Any]:
    """One chat message in the fixed form; ``calls`` maps tool-call ids seen so far to names."""
    if not isinstance(message, dict) or message.get("role") not in _KEYS:
        role = message.get("role") if isinstance(message, dict) else None
        raise ExportError(f"{where}: role must be one of {', '.join(_KEYS)}, got {role!r}")
    role = message["role"]
    extra = set(message) - _KEYS[role]
    if extra:
        raise ExportError(f"{where}: unexpected keys {sorted(extra)} in a {role} message")
    content = message.get("content")
    if role == "assistant":
        raw_calls = message.get("tool_calls") or []
        if not isinstance(raw_calls, list):
            raise ExportError(f"{where}: tool_calls must be a list, got {type(raw_calls).__name__}")
        tool_calls = [_tool_call(c, f"{where}.tool_calls[{i}]") for i, c in enumerate(raw_calls)]
        if content is None and not tool_calls:
            raise ExportError(f"{where}: an assistant message needs content or tool calls")
        if content is not None and not isinstance(content, str):
            raise ExportError(f"{where}: content must be a string, got {type(content).__name__}")
        out: dict[str, Any] = {"role": role, "content": content or ""}
        if tool_calls:
            for call in tool_calls:
                if call["id"] in calls:
                    raise ExportError(f"{where}: tool-call id {call['id']!r} is used twice")
                calls[call["id"]] = call["function"]["name"]
            out["tool_calls"] = tool_calls
        return out
    if not isinstance(content, str):
        raise ExportError(f"{where}: content must be a string, got {type(content).__name__}")
    if role != "tool":
        return {"role": role, "content": content}
    call_id = message.get("tool_call_id")
    if call_id not in calls:
        raise ExportError(f"{where}: tool result for unknown tool_call_id {call_id!r}")
    name = message.get("name", calls[call_id])
    if name != calls[call_id]:
        raise ExportError(f"{where}: tool result names {name!r} but call {call_id!r} was {calls[call_id]!r}")
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}


def trajectory_record(result: ConversationResult) -> dict[str, Any]:
    """The SFT record of one conversation (columns ``SFT_COLUMNS``, in that order)."""
    where = f"conversation {result.conversation_id}"
    if not result.messages:
        raise ExportError(f"{where}: no messages")
    calls: dict[str, str] = {}
    messages = [_message(m, f"{where} message {i}", calls) for i, m in enumerate(result.messages)]
    for i, tool in enumerate(result.tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or tool.get("type") != "function" or not isinstance(fn.get("name"), str):
            raise ExportError(f"{where}: tools[{i}] is not an OpenAI function schema")
    return {
        "messages": messages,
        "tools": json.dumps(result.tools, ensure_ascii=False),
        "domain": result.domain,
        "trajectory_type": result.trajectory_type,
        "w": result.w,
        "e": result.e,
        "task_id": result.task_id,
        "conversation_id": result.conversation_id,
        "attempt": result.attempt,
        "passed": result.passed,
        "reward": msgspec.structs.asdict(result.reward),
        "termination": result.termination,
        "turns": result.turns,
        "tokens": {k: getattr(result.tokens, k) for k in SFT_TOKEN_FIELDS},
        "behavior": dict(result.behavior),
        "backend": result.backend,
        "agent_model": result.agent_model,
        "user_model": result.user_model,
        "seed": result.seed,
        "final_hash": result.final_hash,
        "texts": dict(result.texts),
    }


def encode_trajectory(result: ConversationResult) -> bytes:
    """The SFT record of one conversation as a UTF-8 JSON line (no newline)."""
    return json.dumps(trajectory_record(result), ensure_ascii=False).encode("utf-8")


def arguments_as_objects(messages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of ``messages`` with tool-call arguments decoded to objects (for ``tojson`` templates)."""
    out = []
    for message in messages:
        if message.get("tool_calls"):
            calls = [
                {**c, "function": {**c["function"], "arguments": json.loads(c["function"]["arguments"])}}
                for c in message["tool_calls"]
            ]
            message = {**message, "tool_calls": calls}
        out.append(message)
    return out


def read_results(path: str | Path) -> list[ConversationResult]:
    """Every ``ConversationResult`` in a results.jsonl file, in file order.

    A last line without its newline was cut by a crash before it was acknowledged; it is skipped.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc.strerror}") from None
    lines = data[: data.rfind(b"\n") + 1].splitlines()
    results = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            results.append(decode_result(line))
        except msgspec.DecodeError as exc:
            raise ExportError(f"{path}:{number}: not a ConversationResult: {exc}") from None
    return results


def write_trajectories(results_path: str | Path, out_path: str | Path, *, passed_only: bool = True) -> int:
    """Write the SFT records of a results.jsonl (passing ones only by default), sorted by task and attempt.

    Returns how many records were written. Every record is checked before the file is replaced.
    """
    return write_trajectory_records(read_results(results_path), out_path, passed_only=passed_only)


def write_trajectory_records(
    results: Iterable[ConversationResult], out_path: str | Path, *, passed_only: bool = True
) -> int:
    """``write_trajectories`` for results already in memory."""
    kept = sorted(
        (r for r in results if r.passed or not passed_only),
        key=lambda r: (r.task_id, r.attempt, r.conversation_id),
    )
    lines = [encode_trajectory(r) for r in kept]
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, (line + b"\n" for line in lines))
    return len(lines)


def sft_features() -> datasets.Features:
    """The Hugging Face ``Features`` of an SFT record (messages as ``Json``, tools as a string)."""
    ds = _need("datasets")
    string, i64, f64 = ds.Value("string"), ds.Value("int64"), ds.Value("float64")
    reward = {k: f64 for k in RewardParts.__struct_fields__}
    tokens = dict.fromkeys(SFT_TOKEN_FIELDS, i64)
    columns: dict[str, Any] = {
        "messages": ds.List(ds.Json()),
        "tools": string,
        "domain": string,
        "trajectory_type": string,
        "w": i64,
        "e": i64,
        "task_id": string,
        "conversation_id": string,
        "attempt": i64,
        "passed": ds.Value("bool"),
        "reward": reward,
        "termination": string,
        "turns": i64,
        "tokens": tokens,
        "behavior": ds.Json(),
        "backend": string,
        "agent_model": string,
        "user_model": string,
        "seed": i64,
        "final_hash": string,
        "texts": ds.Json(),
    }
    assert tuple(columns) == SFT_COLUMNS
    return ds.Features(columns)


def write_parquet(jsonl_path: str | Path, parquet_path: str | Path) -> int:
    """Convert a trajectories JSONL file to Parquet with ``sft_features``; returns the record count.

    ``datasets.load_dataset("parquet", data_files=...)`` gives back the same records as the JSONL.
    """
    ds = _need("datasets")
    jsonl_path, parquet_path = Path(jsonl_path), Path(parquet_path)
    try:
        lines = jsonl_path.read_bytes().splitlines()
    except OSError as exc:
        raise ExportError(f"cannot read {jsonl_path}: {exc.strerror}") from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ExportError(f"{jsonl_path}:{number}: not JSON: {exc}") from None
        if not isinstance(record, dict) or tuple(record) != SFT_COLUMNS:
            keys = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise ExportError(f"{jsonl_path}:{number}: not an SFT record (keys {keys})")
        records.append(record)
    try:
        if records:
            table = ds.Dataset.from_list(records, features=sft_features())
        else:  # a run that kept nothing still gets a (typed, empty) Parquet file
            table = ds.Dataset.from_dict({c: [] for c in SFT_COLUMNS}, features=sft_features())
    except (ValueError, TypeError, ArithmeticError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ExportError(f"{jsonl_path}: a record does not fit the SFT columns: {detail}") from None
    parquet_path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(parquet_path) as tmp:
        table.to_parquet(str(tmp))
    return len(records)

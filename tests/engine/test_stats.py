"""``writ stats``: pass rates by (W, E) and behaviour, terminations, drop causes, tokens, plots, bad run dirs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec
import pytest
import typer
from typer.testing import CliRunner

from engine.export import ExportError
from engine.records import ConversationResult, TokenCounts, encode_result
from engine.stats import PLOTS, StatsError, format_summary, stats, summarize
from tests.engine.test_export import airline_result, failed_result, retail_result

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _variant(base: ConversationResult, n: int, **changes: object) -> ConversationResult:
    return msgspec.structs.replace(base, conversation_id=f"{base.task_id}-v{n}", attempt=n, **changes)


@pytest.fixture(scope="module")
def results() -> list[ConversationResult]:
    """Seven conversations of four tasks over three (W, E) cells, two of them retried."""
    air, ret, bad = airline_result(), retail_result(), failed_result()
    tokens = TokenCounts(agent_prompt=1000, agent_completion=100, user_prompt=400, user_completion=50)
    return [
        air,  # (1, 3) pass, user_stop, friendly
        _variant(air, 1, passed=False, termination="max_errors", failures=["goal_state: baggage differs"]),
        ret,  # (0, 4) pass, user_stop, neutral
        bad,  # (2, 1) fail, max_turns, impatient
        _variant(bad, 1, termination="transfer", failures=["goal_state: reservation differs"], tokens=tokens),
        _variant(bad, 2, passed=True, termination="user_stop", failures=[], tokens=tokens),
        _variant(ret, 1, task_id="retail-0009", passed=False, termination="backend_error", failures=[]),
    ]


def _run_dir(tmp_path: Path, results: list[ConversationResult]) -> Path:
    (tmp_path / "results.jsonl").write_bytes(b"".join(encode_result(r) + b"\n" for r in results))
    return tmp_path


def test_summary_counts(results: list[ConversationResult]) -> None:
    s = summarize(results)
    assert s["conversations"] == {"n": 7, "passed": 3, "rate": 3 / 7}
    assert s["tasks"] == {"n": 4, "solved": 3}
    assert s["we"] == {
        "0,4": {"n": 2, "passed": 1, "rate": 0.5},
        "1,3": {"n": 2, "passed": 1, "rate": 0.5},
        "2,1": {"n": 3, "passed": 1, "rate": 1 / 3},
    }
    assert list(s["termination"]) == ["user_stop", "transfer", "max_turns", "max_errors", "backend_error"]
    assert s["termination"]["user_stop"] == {"n": 3, "passed": 3, "rate": 1.0}
    assert s["termination"]["max_errors"] == {"n": 1, "passed": 0, "rate": 0.0}
    assert s["behavior"]["tone"] == {
        "friendly": {"n": 2, "passed": 1, "rate": 0.5},
        "impatient": {"n": 3, "passed": 1, "rate": 1 / 3},
        "neutral": {"n": 2, "passed": 1, "rate": 0.5},
    }
    assert s["behavior"]["mind_change"] == {
        "False": {"n": 5, "passed": 2, "rate": 0.4},
        "True": {"n": 2, "passed": 1, "rate": 0.5},
    }
    assert "seed" not in s["behavior"]
    assert s["trajectory_type"] == {
        "normal": {"n": 5, "passed": 2, "rate": 0.4},
        "read-heavy": {"n": 2, "passed": 1, "rate": 0.5},
    }
    assert s["failures"] == [
        ["goal_state: reservation differs", 2],
        ["goal_state: baggage differs", 1],
    ]
    totals = sorted(
        r.tokens.agent_prompt + r.tokens.agent_completion + r.tokens.user_prompt + r.tokens.user_completion
        for r in results
    )
    assert totals[:2] == [1550, 1550]
    assert s["tokens"]["total"] == {"mean": sum(totals) / 7, "median": totals[3], "p90": totals[6], "max": totals[6]}
    assert s["tokens"]["agent_cached"]["max"] == 8000
    # the four dropped: a backend failure, a transfer the agent never made, chat with no tool call, tool errors
    assert [(d["cause"], d["count"], d["share"]) for d in s["dropped"]] == [
        ("backend_error", 1, 0.25),
        ("user_off_script", 1, 0.25),
        ("agent_no_tools", 1, 0.25),
        ("tool_errors", 1, 0.25),
    ]
    assert s["dropped"][2]["example"] == {
        "conversation_id": "airline-0003-a0",
        "excerpt": "last agent message: Could you give me your user id?",
    }


def test_text_tables(results: list[ConversationResult]) -> None:
    lines = format_summary(summarize(results), "run/results.jsonl").splitlines()
    assert lines[0] == (
        "run/results.jsonl: 7 conversations, 3 passed (42.9%); 3 of 4 tasks have a passing conversation"
    )
    assert lines[2:6] == [
        "pass rate / conversations by W (rows) and E (columns):",
        "W \\ E      1      3      4",
        "    0      .      .  50%/2",
        "    1      .  50%/2      .",
    ]
    assert lines[6] == "    2  33%/3      .      ."
    assert lines[8:11] == [
        "                    convs  passed     rate",
        "domain:",
        "  airline               5       2    40.0%",
    ]
    assert lines[lines.index("behaviour: tone:") + 2] == "  impatient             3       1    33.3%"
    assert lines[lines.index("termination:") + 1 :][:5] == [
        "  user_stop             3       3   100.0%",
        "  transfer              1       0     0.0%",
        "  max_turns             1       0     0.0%",
        "  max_errors            1       0     0.0%",
        "  backend_error         1       0     0.0%",
    ]
    assert "       2  goal_state: reservation differs" in lines
    at = lines.index("why conversations were dropped:")
    assert lines[at + 1 : at + 3] == [
        "  cause             count   share  what to change",
        "  backend_error         1   25.0%  the backend failed: check the server or model logs, memory and backend"
        " settings",
    ]
    assert lines[at + 5].endswith("e.g.  airline-0003-v1: user wrote ###TRANSFER### though the agent did not"
                                  " transfer: I want to cancel something.")
    assert lines[at + 10] == ""
    assert lines[-1] == "tokens total_passed           8189     11507     11509     11509"


def _app() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(stats)
    return app


def test_stats_command_writes_plots(results: list[ConversationResult], tmp_path: Path) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("matplotlib is required when CI=true")
        pytest.skip("matplotlib is not installed")
    run = _run_dir(tmp_path, results)
    out = CliRunner().invoke(_app(), [str(run)])
    assert out.exit_code == 0, out.output
    assert "7 conversations, 3 passed (42.9%)" in out.output
    for name in PLOTS:
        data = (run / "plots" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    assert out.output.rstrip().endswith(", ".join(str(run / "plots" / n) for n in PLOTS))


def test_stats_json_without_plots(results: list[ConversationResult], tmp_path: Path) -> None:
    run = _run_dir(tmp_path, results)
    out = CliRunner().invoke(_app(), [str(run), "--json", "--no-plots"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data.pop("yield")["branches"] == sum(len(r.branch_path) for r in results)
    assert data == json.loads(json.dumps(summarize(results)))
    assert not (run / "plots").exists()


def test_empty_run_prints_zero(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, [])
    out = CliRunner().invoke(_app(), [str(run)])
    assert out.exit_code == 0, out.output
    assert out.output.startswith(f"{run / 'results.jsonl'}: 0 conversations, 0 passed (0.0%)")
    assert not (run / "plots").exists()


def test_not_a_run_dir(tmp_path: Path) -> None:
    with pytest.raises(StatsError) as info:
        stats(tmp_path, plots=False)
    assert str(info.value) == f"{tmp_path} is not a run directory: {tmp_path / 'results.jsonl'} does not exist"


def test_corrupt_results_line(results: list[ConversationResult], tmp_path: Path) -> None:
    run = _run_dir(tmp_path, results[:2])
    with open(run / "results.jsonl", "ab") as f:
        f.write(b'{"conversation_id": "torn", "task_id"\n')
    with pytest.raises(ExportError) as info:
        stats(run, plots=False)
    assert str(info.value).startswith(f"{run / 'results.jsonl'}:3: not a ConversationResult: ")
    assert "\n" not in str(info.value)

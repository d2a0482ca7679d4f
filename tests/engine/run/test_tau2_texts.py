"""tau2-aligned mode: tau2-bench's policy and tool descriptions read from the user's copy at run time.

The tau2 tree here is a small fake built in tmp_path with our own words (tool docstrings in tau2's
layout and style); the policy is tau2's own from ../shared/tau2 where present. Nothing of tau2's
text ships with writ.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.run.config import RunConfigError, parse_run_config
from engine.run.tau2_texts import Tau2TextsError, apply_tool_docs, load_tau2_texts, parse_docstring, texts_record
from envs import get_domain
from tests.conftest import TAU2
from tests.engine.run.runs import cache, results_of, writ, write_config  # noqa: F401

TOOLS_PY = '''
from tau2.environment.toolkit import ToolKitBase, ToolType, is_tool


class AirlineTools(ToolKitBase):
    @is_tool(ToolType.WRITE)
    def cancel_reservation(self, reservation_id: str):
        """Drop a booking entirely (our words, for the test).

        Args:
            reservation_id: Six letters naming the booking,
                for example 'ABC123'.

        Returns:
            The updated booking.
        """

    @is_tool(ToolType.READ)
    def get_user_details(self, user_id: str):
        """Look a customer up (our words).

        Args:
            user_id: The customer's handle.
        """

    def helper(self):
        """Not a tool."""
'''


def fake_tau2(root: Path) -> Path:
    tools = root / "src" / "tau2" / "domains" / "airline"
    tools.mkdir(parents=True)
    (tools / "tools.py").write_text(TOOLS_PY, encoding="utf-8")
    policy = root / "data" / "tau2" / "domains" / "airline"
    policy.mkdir(parents=True)
    if (TAU2 / "airline" / "policy.md").exists():
        shutil.copy(TAU2 / "airline" / "policy.md", policy / "policy.md")
    else:
        (policy / "policy.md").write_text("# Airline policy (test stand-in)\n", encoding="utf-8")
    return root


def test_docstrings_become_the_agents_tool_descriptions(tmp_path: Path) -> None:
    texts = load_tau2_texts(fake_tau2(tmp_path), "airline")
    assert set(texts.tools) == {"cancel_reservation", "get_user_details"}
    assert texts.policy == (tmp_path / "data/tau2/domains/airline/policy.md").read_text(encoding="utf-8")
    ours = get_domain("airline").openai_tools()
    shown = {t["function"]["name"]: t["function"] for t in apply_tool_docs(ours, texts.tools)}
    cancel = shown["cancel_reservation"]
    assert cancel["description"] == "Drop a booking entirely (our words, for the test)."
    assert cancel["parameters"]["properties"]["reservation_id"]["description"] == (
        "Six letters naming the booking, for example 'ABC123'."
    )
    assert shown["get_user_details"]["description"] == "Look a customer up (our words)."
    before = {t["function"]["name"]: t["function"] for t in ours}
    assert shown["book_reservation"] == before["book_reservation"]  # not in the file: writ's text stays
    assert before["cancel_reservation"]["description"] != cancel["description"]  # ours is untouched
    record = texts_record(texts.policy, apply_tool_docs(ours, texts.tools), texts)
    assert record["source"] == "tau2" and len(record["policy_sha256"]) == 64 and len(record["tools_sha256"]) == 64
    assert record["tools_from_tau2"] == ["cancel_reservation", "get_user_details"]
    assert texts_record("p", ours, None)["source"] == "writ"


def test_parse_docstring_sections() -> None:
    doc = parse_docstring(
        "Summary line.\n\nMore text.\n\nArgs:\n    a (str): First.\n    b: Second\n        continued.\n\n"
        "Returns:\n    x: not an arg"
    )
    assert doc.description == "Summary line.\n\nMore text."
    assert doc.params == {"a": "First.", "b": "Second continued."}


def test_missing_copy_and_conflicting_keys_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(Tau2TextsError, match="cannot read tau2-bench's policy"):
        load_tau2_texts(tmp_path, "airline")
    with pytest.raises(RunConfigError, match="policy and tau2_root are both set"):
        parse_run_config({"agent": {"backend": "llamacpp"}, "policy": "p.md", "tau2_root": str(tmp_path)})


def test_a_run_in_tau2_mode_shows_tau2_texts_and_records_them(tmp_path: Path, cache: Path) -> None:  # noqa: F811
    root = fake_tau2(tmp_path / "tau2-bench")
    config = write_config(tmp_path, "aligned", n=2, steps=4, live=2)
    config.write_text(f'tau2_root = "{root}"\n' + config.read_text())
    proc = writ(["run", str(config), "--out", str(tmp_path / "run"), "--quiet"], cache)
    assert proc.returncode == 0, proc.stderr
    results = results_of(tmp_path / "run")
    assert len(results) == 2
    policy = (root / "data/tau2/domains/airline/policy.md").read_text(encoding="utf-8")
    for r in results:
        assert r["messages"][0]["content"].endswith(policy)
        tools = {t["function"]["name"]: t["function"] for t in r["tools"]}
        assert tools["cancel_reservation"]["description"] == "Drop a booking entirely (our words, for the test)."
        assert r["texts"]["source"] == "tau2" and r["texts"]["tools_from_tau2"] == [
            "cancel_reservation", "get_user_details"]  # fmt: skip

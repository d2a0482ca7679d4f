"""How well a real model plays the customer: user turns that keep to the scenario, conversations ended by a stop token.

Runs ``writ run`` (SmolLM2-135M-Instruct in both roles, the code on ``PYTHONPATH``, its default user
temperature and user prompt) on a few airline tasks with a short turn limit, then reads the run's
records and prints:

- user turns that follow the scenario: a user turn follows it when every token with a digit in it
  (ids, dates, amounts, zip codes) also appears in the task's instruction or in an earlier agent
  message (nothing invented), it does not speak as the agent ("how can I help", "I am here to
  assist you", "customer service agent" ...) and it does not echo the agent's last message (the
  same text, or the same first 40 characters). Deterministic: it reads only the recorded messages
  and the task's instruction.
- user turns that state a scenario fact (one of the instruction's ids, dates or numbers).
- conversations that end with a stop token (``###STOP###``, ``###TRANSFER###``, ``###OUT-OF-SCOPE###``).

Compare two versions of writ by pointing ``PYTHONPATH`` at each checkout:

    PYTHONPATH=/path/to/old .venv/bin/python bench/user_sim.py --conversations 6
    PYTHONPATH=$PWD .venv/bin/python bench/user_sim.py --conversations 6
    .venv/bin/python bench/user_sim.py --score RUN_DIR      # score a run directory again, no run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DIGITS = re.compile(r"[A-Za-z0-9_.@#-]*\d[A-Za-z0-9_.@#-]*")
AGENT_PHRASES = (
    "how can i help",
    "how may i help",
    "how can i assist",
    "how may i assist",
    "here to help you",
    "here to assist you",
    "assist you with",
    "customer service agent",
    "customer service representative",
)
STOP_TOKENS = ("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###")


def _tokens(text: str) -> set[str]:
    return {t.strip(".,-#").lower() for t in DIGITS.findall(text)} - {""}


def _words(text: str) -> str:
    return " ".join(text.lower().split())


def follows(turn: str, scenario: str, heard: str, last_agent: str) -> bool:
    """Whether a user turn invents no id/number/date, does not speak as the agent and does not echo it."""
    lowered = _words(turn)
    if any(p in lowered for p in AGENT_PHRASES):
        return False
    last = _words(last_agent)
    if lowered and last and (lowered == last or last.startswith(lowered[:40]) or lowered.startswith(last[:40])):
        return False  # an echo of the agent's message
    known = _tokens(scenario) | _tokens(heard)
    said = {t for t in _tokens(turn) if not any(t in k for k in known)}
    return not said


def mentions_fact(turn: str, scenario: str) -> bool:
    """Whether a user turn states something of its scenario: one of its ids, dates or numbers."""
    return bool(_tokens(turn) & _tokens(scenario))


def score(results: list[dict], instructions: dict[str, str]) -> dict[str, int]:
    """User turns following the scenario (and stating one of its facts), all user turns,
    conversations ended by a stop token, all conversations."""
    good = facts = turns = stopped = 0
    for r in results:
        heard = last_agent = ""
        scenario = instructions[r["task_id"]]
        for m in r["messages"]:
            if m["role"] == "assistant" and m.get("content"):
                heard += " " + m["content"]
                last_agent = m["content"]
            elif m["role"] == "user":
                turns += 1
                good += follows(m["content"], scenario, heard, last_agent)
                facts += mentions_fact(m["content"], scenario)
        last = next((m for m in reversed(r["messages"]) if m["role"] == "user"), None)
        stopped += last is not None and any(t in last["content"] for t in STOP_TOKENS)
    return {
        "following_turns": good,
        "fact_turns": facts,
        "user_turns": turns,
        "stop_ended": stopped,
        "conversations": len(results),
    }


CONFIG = """\
domain = "airline"
seed = 0
max_live = {live}
[db]
users = 200
seed = 0
[tasks]
n = {n}
seed = 0
[agent]
backend = "llamacpp"
model = "smollm2-135m"
n_ctx = 8192
n_parallel = {slots}
[agent_sampling]
temperature = 0.2
max_tokens = 120
[user_sampling]
temperature = {user_temperature}
max_tokens = 64
[limits]
max_steps = {steps}
max_errors = 3
max_context_tokens = 8192
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=6, help="tasks to play, one conversation each")
    parser.add_argument("--steps", type=int, default=16, help="limits.max_steps (messages) per conversation")
    parser.add_argument("--keep", type=Path, help="keep the run directory here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--user-temperature", type=float, help="override the checkout's default user temperature")
    parser.add_argument("--score", type=Path, help="only score an existing run directory (no run)")
    args = parser.parse_args()
    if args.score is not None:
        _report(_score_dir(args.score) | {"code": str(args.score)}, args.json)
        return

    from engine.run.config import RunConfig  # the checkout on PYTHONPATH: its defaults

    user_temperature = RunConfig.model_fields["user_sampling"].default.temperature
    if args.user_temperature is not None:
        user_temperature = args.user_temperature
    work = Path(tempfile.mkdtemp(prefix="writ-user-sim-"))
    out = args.keep or work / "run"
    config = work / "user_sim.toml"
    live = min(4, args.conversations)
    config.write_text(
        CONFIG.format(
            n=args.conversations, live=live, slots=2 * live, steps=args.steps, user_temperature=user_temperature
        ),
        encoding="utf-8",
    )
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "run", str(config), "--out", str(out), "--quiet"],
        env=dict(os.environ),
        cwd=work,  # not the checkout: ``-m engine`` must import the code on PYTHONPATH
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"writ run failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    code = os.environ.get("PYTHONPATH", "")
    figures = _score_dir(out) | {"user_temperature": user_temperature, "seconds": round(seconds, 1), "code": code}
    _report(figures, args.json)


def _score_dir(out: Path) -> dict:
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    tasks = [json.loads(line) for line in (out / "tasks.jsonl").read_text().splitlines() if line.strip()]
    return score(results, {t["task_id"]: t["instruction"] for t in tasks})


def _report(figures: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(figures))
        return
    extra = f"  user temperature: {figures['user_temperature']}" if "user_temperature" in figures else ""
    wall = f"  wall: {figures['seconds']} s" if "seconds" in figures else ""
    print(f"code: {figures['code']}{extra}{wall}")
    print(f"user turns following the scenario: {figures['following_turns']} of {figures['user_turns']}")
    print(f"user turns stating a scenario fact: {figures['fact_turns']} of {figures['user_turns']}")
    print(f"conversations ended by a stop token: {figures['stop_ended']} of {figures['conversations']}")


if __name__ == "__main__":
    main()

"""``writ stats RUN_DIR``: pass rates, terminations and token use of a run's results.jsonl, with PNG plots.

It reads ``RUN_DIR/results.jsonl`` (one ``ConversationResult`` per finished conversation) and prints
plain-text tables: pass rate by (W, E), by domain, trajectory type and each behaviour field,
termination reasons, the commonest verification failures, why the dropped conversations were
dropped (one cause each with what to change, see ``engine.run.diagnose``) and tokens per conversation. The plots
(pass-rate heat map over W x E, termination bar chart, token histogram) go to ``RUN_DIR/plots/``;
matplotlib is imported only to draw them. It changes nothing else in the run directory.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from engine.export import read_results
from engine.records import TERMINATIONS, ConversationResult
from engine.run.diagnose import summarize_causes

__all__ = ["StatsError", "format_summary", "plot", "stats", "summarize", "total_tokens"]

TOKEN_FIELDS = ("agent_prompt", "agent_cached", "agent_completion", "user_prompt", "user_cached", "user_completion")
PLOTS = ("pass_rate_we.png", "terminations.png", "tokens.png")


class StatsError(ValueError):
    """A ``writ stats`` invocation that cannot run; the message is one line."""


def total_tokens(result: ConversationResult) -> int:
    """Prompt plus completion tokens of both roles (cached prompt tokens are part of the prompt)."""
    t = result.tokens
    return t.agent_prompt + t.agent_completion + t.user_prompt + t.user_completion


def _rate(group: Sequence[ConversationResult]) -> dict[str, Any]:
    passed = sum(r.passed for r in group)
    return {"n": len(group), "passed": passed, "rate": passed / len(group) if group else 0.0}


def _by(
    results: Sequence[ConversationResult], key: Callable[[ConversationResult], Any], name: Callable[[Any], str] = str
) -> dict[str, Any]:
    """Pass rates grouped by ``key``, in sorted key order, named by ``name``."""
    groups: dict[Any, list[ConversationResult]] = defaultdict(list)
    for r in results:
        groups[key(r)].append(r)
    return {name(k): _rate(groups[k]) for k in sorted(groups, key=lambda k: (str(type(k)), k))}


def _spread(values: Sequence[int]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"mean": 0.0, "median": 0.0, "p90": 0.0, "max": 0.0}
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return {"mean": statistics.fmean(ordered), "median": statistics.median(ordered), "p90": p90, "max": ordered[-1]}


def summarize(results: Sequence[ConversationResult], top_failures: int = 10) -> dict[str, Any]:
    """Every statistic ``writ stats`` prints, as plain JSON-ready data."""
    tasks: dict[str, bool] = {}
    for r in results:
        tasks[r.task_id] = tasks.get(r.task_id, False) or r.passed
    behaviour_keys = sorted({k for r in results for k in r.behavior} - {"seed"})
    failures = Counter(f for r in results for f in r.failures)
    terminations = Counter(r.termination for r in results)
    order = [t for t in TERMINATIONS if t in terminations] + sorted(set(terminations) - set(TERMINATIONS))
    tokens = {f: _spread([getattr(r.tokens, f) for r in results]) for f in TOKEN_FIELDS}
    tokens["total"] = _spread([total_tokens(r) for r in results])
    tokens["total_passed"] = _spread([total_tokens(r) for r in results if r.passed])
    return {
        "conversations": _rate(results),
        "tasks": {"n": len(tasks), "solved": sum(tasks.values())},
        "we": _by(results, lambda r: (r.w, r.e), lambda k: f"{k[0]},{k[1]}"),
        "domain": _by(results, lambda r: r.domain),
        "trajectory_type": _by(results, lambda r: r.trajectory_type),
        "behavior": {k: _by(results, lambda r, k=k: r.behavior.get(k)) for k in behaviour_keys},
        "termination": {t: _rate([r for r in results if r.termination == t]) for t in order},
        "failures": [[text, n] for text, n in sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))[:top_failures]],
        "dropped": summarize_causes(results),
        "turns": _spread([r.turns for r in results]),
        "tokens": tokens,
    }


def _cell(v: dict[str, Any] | None) -> str:
    return "." if v is None else f"{100 * v['rate']:.0f}%/{v['n']}"


def _we_table(we: dict[str, Any]) -> list[str]:
    keys = [tuple(map(int, k.split(","))) for k in we]
    ws = sorted({w for w, _ in keys})
    es = sorted({e for _, e in keys})
    width = max([len(_cell(v)) for v in we.values()] + [4]) + 2
    out = ["pass rate / conversations by W (rows) and E (columns):", "W \\ E" + "".join(f"{e:>{width}}" for e in es)]
    for w in ws:
        out.append(f"{w:>5}" + "".join(f"{_cell(we.get(f'{w},{e}')):>{width}}" for e in es))
    return out


def _group_table(title: str, groups: dict[str, Any], width: int) -> list[str]:
    out = [f"{title}:"]
    out += [f"  {name:<{width}}{v['n']:>7}{v['passed']:>8}{100 * v['rate']:>8.1f}%" for name, v in groups.items()]
    return out


def _dropped_table(rows: list[dict[str, Any]]) -> list[str]:
    """Cause, count, share and what to change per row, the example conversation on the line below."""
    width = max(len(row["cause"]) for row in rows) + 2
    out = ["why conversations were dropped:", f"  {'cause':<{width}}{'count':>6}{'share':>8}  what to change"]
    for row in rows:
        out.append(f"  {row['cause']:<{width}}{row['count']:>6}{100 * row['share']:>7.1f}%  {row['advice']}")
        out.append(f"  {'':<{width}}{'e.g.':>14}  {row['example']['conversation_id']}: {row['example']['excerpt']}")
    return out


def format_summary(summary: dict[str, Any], source: str = "") -> str:
    """The summary as printable plain-text tables."""
    c, t = summary["conversations"], summary["tasks"]
    tables = [
        ("domain", summary["domain"]),
        ("trajectory type", summary["trajectory_type"]),
        *((f"behaviour: {k}", v) for k, v in summary["behavior"].items()),
        ("termination", summary["termination"]),
    ]
    width = max([len(name) for _, groups in tables for name in groups] + [14]) + 2
    out = [
        f"{source}: {c['n']} conversations, {c['passed']} passed ({100 * c['rate']:.1f}%); "
        f"{t['solved']} of {t['n']} tasks have a passing conversation",
        "",
        *_we_table(summary["we"]),
        "",
        f"  {'':<{width}}{'convs':>7}{'passed':>8}{'rate':>9}",
    ]
    for title, groups in tables:
        out += _group_table(title, groups, width)
    if summary["failures"]:
        out += ["", "commonest verification failures:"]
        out += [f"  {n:>6}  {text}" for text, n in summary["failures"]]
    if summary.get("dropped"):
        out += ["", *_dropped_table(summary["dropped"])]
    out += ["", f"{'per conversation':<24}{'mean':>10}{'median':>10}{'p90':>10}{'max':>10}"]
    rows = {"turns": summary["turns"], **{f"tokens {k}": v for k, v in summary["tokens"].items()}}
    out += [f"{k:<24}" + "".join(f"{v[s]:>10.0f}" for s in ("mean", "median", "p90", "max")) for k, v in rows.items()]
    return "\n".join(out)


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise StatsError("the plots need matplotlib: pip install matplotlib (or pass --no-plots)") from None
    return plt


def plot(results: Sequence[ConversationResult], out_dir: str | Path) -> list[Path]:
    """Write the three PNG plots (``PLOTS``) into ``out_dir``; returns their paths."""
    plt = _pyplot()
    import numpy as np

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / name for name in PLOTS]

    # 1) pass rate over W x E, NaN where no conversation had that (W, E)
    ws = list(range(min(r.w for r in results), max(r.w for r in results) + 1))
    es = list(range(min(r.e for r in results), max(r.e for r in results) + 1))
    n = np.zeros((len(ws), len(es)))
    passed = np.zeros_like(n)
    for r in results:
        n[r.w - ws[0], r.e - es[0]] += 1
        passed[r.w - ws[0], r.e - es[0]] += r.passed
    rate = np.divide(passed, n, out=np.full_like(n, np.nan), where=n > 0)
    fig, ax = plt.subplots(figsize=(1.5 + 0.7 * len(es), 1.2 + 0.6 * len(ws)))
    image = ax.imshow(rate, cmap="RdYlGn", vmin=0.0, vmax=1.0, origin="lower", aspect="auto")
    for i in range(len(ws)):
        for j in range(len(es)):
            if n[i, j]:
                ax.text(j, i, f"{100 * rate[i, j]:.0f}%\n{int(n[i, j])}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(es)), [str(e) for e in es])
    ax.set_yticks(range(len(ws)), [str(w) for w in ws])
    ax.set_xlabel("E (evidence reads)")
    ax.set_ylabel("W (writes)")
    ax.set_title("pass rate by (W, E)")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)

    # 2) termination reasons, passed and failed stacked
    counts = Counter((r.termination, r.passed) for r in results)
    reasons = [t for t in TERMINATIONS if any(k[0] == t for k in counts)]
    reasons += sorted({k[0] for k in counts} - set(reasons))
    ok = [counts[(t, True)] for t in reasons]
    bad = [counts[(t, False)] for t in reasons]
    fig, ax = plt.subplots(figsize=(1.5 + 0.9 * len(reasons), 3.5))
    ax.bar(reasons, ok, color="tab:green", label="passed")
    ax.bar(reasons, bad, bottom=ok, color="tab:red", label="failed")
    ax.set_ylabel("conversations")
    ax.set_title("termination reasons")
    ax.legend()
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(paths[1], dpi=120)
    plt.close(fig)

    # 3) tokens per conversation, passed and failed
    fig, ax = plt.subplots(figsize=(6, 3.5))
    groups = [[total_tokens(r) for r in results if r.passed], [total_tokens(r) for r in results if not r.passed]]
    ax.hist(
        groups,
        bins=min(30, max(5, len(results) // 4)),
        stacked=True,
        color=["tab:green", "tab:red"],
        label=["passed", "failed"],
    )
    ax.set_xlabel("tokens per conversation (prompt + completion, agent + user)")
    ax.set_ylabel("conversations")
    ax.legend()
    fig.tight_layout()
    fig.savefig(paths[2], dpi=120)
    plt.close(fig)
    return paths


def stats(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (holds results.jsonl).")],
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write PNG plots into RUN_DIR/plots/.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON instead of tables.")] = False,
) -> None:
    """Print pass rates by (W, E) and behaviour, termination reasons and tokens; write PNG plots."""
    path = run_dir / "results.jsonl"
    if not path.is_file():
        raise StatsError(f"{run_dir} is not a run directory: {path} does not exist")
    results = read_results(path)
    summary = summarize(results)
    from engine.run.quota import yield_lines, yield_summary

    config_path = run_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    summary["yield"] = yield_summary(config if isinstance(config, dict) else {}, results)
    text = format_summary(summary, str(path)) + "\n\n" + "\n".join(yield_lines(summary["yield"]))
    typer.echo(json.dumps(summary, indent=2) if as_json else text)
    if plots and results:
        written = plot(results, run_dir / "plots")
        if not as_json:
            typer.echo(f"\nplots: {', '.join(str(p) for p in written)}")

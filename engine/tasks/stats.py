"""Statistics of a task file: the W x E table, trajectory types, intent kinds, rejection reasons, heat map.

Text output only, plus an optional PNG heat map drawn with matplotlib (imported lazily; it is
needed only for ``--png``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from engine.tasks.model import Task
from engine.tasks.synthesis import SynthesisReport

__all__ = ["grid", "heatmap", "summary"]


def grid(tasks: Sequence[Task]) -> tuple[list[int], list[int], dict[tuple[int, int], int]]:
    """The W values, E values (1 up to the largest seen) and task count per (W, E)."""
    counts = Counter((t.w, t.e) for t in tasks)
    ws = list(range(1, max((t.w for t in tasks), default=0) + 1))
    es = list(range(1, max((t.e for t in tasks), default=0) + 1))
    return ws, es, dict(counts)


def summary(tasks: Sequence[Task], report: SynthesisReport | None = None, top: int = 30) -> str:
    """The W x E table and the other breakdowns as printable text."""
    ws, es, counts = grid(tasks)
    out = [f"{len(tasks)} tasks", "", "W \\ E " + "".join(f"{e:>5}" for e in es) + "  total"]
    for w in ws:
        row = [counts.get((w, e), 0) for e in es]
        out.append(f"{w:>5} " + "".join(f"{c:>5}" for c in row) + f"{sum(row):>7}")
    out.append("total " + "".join(f"{sum(counts.get((w, e), 0) for w in ws):>5}" for e in es))
    out += ["", "trajectory types:"]
    out += [f"  {k:<16}{v:>6}" for k, v in sorted(Counter(t.trajectory_type for t in tasks).items())]
    out += ["", "intent kinds:"]
    kinds = Counter(i.kind for t in tasks for i in t.intents)
    out += [f"  {k:<32}{v:>6}" for k, v in sorted(kinds.items())]
    dependent = sum(1 for t in tasks if any(i.depends_on for i in t.intents))
    out += ["", f"tasks with dependent intents: {dependent}"]
    if report is not None:
        rejected = sum(report.rejections.values())
        out += [
            "",
            f"attempts: {report.attempts}, accepted: {report.accepted}, rejections: {rejected}",
            "rejection reasons:",
        ]
        ranked = sorted(report.rejections.items(), key=lambda kv: (-kv[1], kv[0]))
        out += [f"  {v:>7}  {k}" for k, v in ranked[:top]]
        if len(ranked) > top:
            out.append(f"  ... {len(ranked) - top} more reasons")
    return "\n".join(out)


def heatmap(tasks: Sequence[Task], path: str | Path, title: str = "tasks per (W, E)") -> None:
    """Write a PNG heat map of task counts over W (rows) and E (columns)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("the task heat map needs matplotlib: pip install matplotlib") from None
    ws, es, counts = grid(tasks)
    data = [[counts.get((w, e), 0) for e in es] for w in ws]
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * max(len(es), 1), 1.2 + 0.55 * max(len(ws), 1)))
    image = ax.imshow(data, cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(len(es)), [str(e) for e in es])
    ax.set_yticks(range(len(ws)), [str(w) for w in ws])
    ax.set_xlabel("E (evidence reads)")
    ax.set_ylabel("W (writes)")
    ax.set_title(title)
    top = max((v for row in data for v in row), default=0)
    for i, row in enumerate(data):
        for j, value in enumerate(row):
            if value:
                color = "black" if value > top * 0.6 else "white"
                ax.text(j, i, str(value), ha="center", va="center", color=color, fontsize=7)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Software": None})
    plt.close(fig)

"""The figures of ``writ bench``: the records they are made of, how they are computed, and the printed table.

One run's figures (``RunFigures``) are computed in the child process that played the run, from
two sources: every turn the backend answered (``TurnSample``, timed around ``Backend.generate``:
tokens and latency, including the finished turns of conversations cut off by the time limit) and
the run's own finished records (``ConversationResult``: conversations, kept count, prefix-cache
shares on later turns). ``BenchReport`` gathers one or two runs with the ratio column, the
projection, hardware and versions; ``format_report`` prints it as plain aligned text. Nothing here
runs a model or reads a file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from engine.records import ConversationResult

__all__ = [
    "BenchReport",
    "Projection",
    "RoleFigures",
    "RunFigures",
    "TurnSample",
    "format_report",
    "percentile",
    "projection",
    "ratios",
    "role_of",
    "run_figures",
]

class TurnSample(msgspec.Struct, kw_only=True, frozen=True, array_like=True, gc=False):
    """One answered request: its role, wall time around ``generate`` and its token counts."""

    role: str
    latency_s: float
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int


class RoleFigures(msgspec.Struct, kw_only=True, frozen=True):
    """One role's figures: turns and tokens answered, prefix cache on later turns, turn latency."""

    turns: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    prompt_later: int  # from the finished records: prompt tokens of the role's later turns
    cached_later: int  # ... of which the prefix cache served
    cache_later_share: float | None
    latency_p50_s: float | None
    latency_p90_s: float | None


class RunFigures(msgspec.Struct, kw_only=True, frozen=True):
    """Everything measured on one config. Rates divide by ``wall_s``, the conversation phase only."""

    label: str
    config: str
    run_dir: str | None
    status: str  # complete | time_limit | interrupted
    backend: str
    agent_model: str
    user_model: str
    tasks_sha256: str  # of the played tasks, encoded: equal for the two runs of --against
    conversations_planned: int
    conversations_finished: int
    kept: int
    keep_rate: float | None
    plan_s: float  # DB, tasks and the model preflight: not part of the rates
    engine_start_s: float | None  # backend construction, model load included
    wall_s: float
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    prompt_tokens_per_s: float | None
    prompt_computed_tokens_per_s: float | None  # prompt tokens not served by the prefix cache
    generation_tokens_per_s: float | None
    conversations_per_hour: float | None
    kept_per_hour: float | None
    agent: RoleFigures
    user: RoleFigures
    loop_cpu_s: float  # CPU time of the event-loop thread: writ's conversations, kernel, verification, I/O
    process_cpu_s: float  # CPU time of the whole process, backend threads included
    writ_share: float | None  # loop_cpu_s / wall_s; the rest of the wall time went to the backend
    peak_rss_mb: float
    gpu_memory_mb: float | None
    gpu_memory_source: str | None
    llama_cpp_system_info: str | None
    notes: list[str]


class Projection(msgspec.Struct, kw_only=True, frozen=True):
    """Time to reach ``target`` kept trajectories at one run's measured rate (an estimate)."""

    label: str
    target: int
    kept_per_hour: float | None
    hours: float | None
    text: str


class BenchReport(msgspec.Struct, kw_only=True, frozen=True):
    """What ``writ bench --json`` prints: the runs, the ratio of run 1 to run 2, the projections."""

    runs: list[RunFigures]
    ratio: dict[str, float | None] | None
    ratio_of: str | None
    same_tasks: bool | None
    projections: list[Projection]
    target: int
    conversations: int
    time_limit_s: float
    interrupted: bool
    hardware: dict[str, Any]
    versions: dict[str, str]


def role_of(request_id: str) -> str:
    """``agent`` or ``user`` from a request id ``<conversation>/a<step>`` or ``/u<step>`` (``.rN`` retries)."""
    tail = request_id.rsplit("/", 1)[-1]
    return "user" if tail.startswith("u") else "agent"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation between ranks; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _per(numerator: float, seconds: float, scale: float = 1.0) -> float | None:
    return numerator / seconds * scale if seconds > 0 else None


def _role(role: str, turns: Sequence[TurnSample], results: Sequence[ConversationResult]) -> RoleFigures:
    mine = [t for t in turns if t.role == role]
    latencies = [t.latency_s for t in mine]
    later = sum(getattr(r.tokens, f"{role}_prompt_later") for r in results)
    cached_later = sum(getattr(r.tokens, f"{role}_cached_later") for r in results)
    return RoleFigures(
        turns=len(mine),
        prompt_tokens=sum(t.prompt_tokens for t in mine),
        cached_tokens=sum(t.cached_tokens for t in mine),
        completion_tokens=sum(t.completion_tokens for t in mine),
        prompt_later=later,
        cached_later=cached_later,
        cache_later_share=cached_later / later if later else None,
        latency_p50_s=percentile(latencies, 50),
        latency_p90_s=percentile(latencies, 90),
    )


def run_figures(
    *,
    turns: Sequence[TurnSample],
    results: Sequence[ConversationResult],
    wall_s: float,
    loop_cpu_s: float,
    **fields: Any,
) -> RunFigures:
    """One run's figures from its answered turns and finished records; ``fields`` gives the rest."""
    prompt = sum(t.prompt_tokens for t in turns)
    cached = sum(t.cached_tokens for t in turns)
    completion = sum(t.completion_tokens for t in turns)
    finished = len(results)
    kept = sum(r.passed for r in results)
    return RunFigures(
        conversations_finished=finished,
        kept=kept,
        keep_rate=kept / finished if finished else None,
        wall_s=wall_s,
        prompt_tokens=prompt,
        cached_tokens=cached,
        completion_tokens=completion,
        prompt_tokens_per_s=_per(prompt, wall_s),
        prompt_computed_tokens_per_s=_per(prompt - cached, wall_s),
        generation_tokens_per_s=_per(completion, wall_s),
        conversations_per_hour=_per(finished, wall_s, 3600),
        kept_per_hour=_per(kept, wall_s, 3600),
        agent=_role("agent", turns, results),
        user=_role("user", turns, results),
        loop_cpu_s=loop_cpu_s,
        writ_share=loop_cpu_s / wall_s if wall_s > 0 else None,
        **fields,
    )


def _hours(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def projection(figures: RunFigures, target: int) -> Projection:
    """How long ``target`` kept trajectories would take at this run's kept/hour (from its keep rate)."""
    rate = figures.kept_per_hour
    finished = figures.conversations_finished
    if not figures.kept or not rate:
        text = (
            f"{figures.label}: no trajectory was kept ({figures.kept} of {finished} conversations passed), "
            f"so the time to {target:,} kept trajectories cannot be estimated from this run"
        )
        return Projection(label=figures.label, target=target, kept_per_hour=rate, hours=None, text=text)
    hours = target / rate
    text = (
        f"{figures.label}: about {_hours(hours)} to {target:,} kept trajectories at {rate:,.1f} kept/hour "
        f"(an estimate from this run's keep rate, {figures.kept} of {finished} = {figures.keep_rate:.1%})"
    )
    return Projection(label=figures.label, target=target, kept_per_hour=rate, hours=hours, text=text)


# -- the table ----------------------------------------------------------------------------------

Getter = Callable[[RunFigures], Any]


def _get(path: str) -> Getter:
    def get(figures: RunFigures) -> Any:
        value: Any = figures
        for part in path.split("."):
            value = getattr(value, part)
        return value

    return get


def _num(digits: int) -> Callable[[Any], str]:
    return lambda v: "-" if v is None else f"{v:,.{digits}f}"


def _share(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.2%}" if 0 < v < 0.01 else f"{v:.1%}"  # a small share keeps two digits rather than 0.0%


# (title, field path or None, formatter, in the ratio column)
_ROWS: list[tuple[str, str, Callable[[Any], str], bool]] = [
    ("engine start (s)", "engine_start_s", _num(2), True),
    ("wall time, conversations (s)", "wall_s", _num(1), True),
    ("prompt tokens/s", "prompt_tokens_per_s", _num(1), True),
    ("  not from the prefix cache", "prompt_computed_tokens_per_s", _num(1), True),
    ("generation tokens/s", "generation_tokens_per_s", _num(1), True),
    ("conversations/hour", "conversations_per_hour", _num(1), True),
    ("kept trajectories/hour", "kept_per_hour", _num(1), True),
    ("keep rate", "keep_rate", _share, True),
    ("prefix cache, agent later turns", "agent.cache_later_share", _share, True),
    ("prefix cache, user later turns", "user.cache_later_share", _share, True),
    ("writ's own code (event loop CPU)", "writ_share", _share, True),
    ("agent turn latency p50 (s)", "agent.latency_p50_s", _num(2), True),
    ("agent turn latency p90 (s)", "agent.latency_p90_s", _num(2), True),
    ("user turn latency p50 (s)", "user.latency_p50_s", _num(2), True),
    ("user turn latency p90 (s)", "user.latency_p90_s", _num(2), True),
    ("peak memory, RSS (MB)", "peak_rss_mb", _num(0), True),
    ("GPU memory (MB)", "gpu_memory_mb", _num(0), True),
]

RATIO_FIELDS = tuple(path for _, path, _, in_ratio in _ROWS if in_ratio)


def ratios(first: RunFigures, second: RunFigures) -> dict[str, float | None]:
    """``first / second`` for every figure of the ratio column; None where either is missing or zero."""
    out: dict[str, float | None] = {}
    for path in RATIO_FIELDS:
        a, b = _get(path)(first), _get(path)(second)
        out[path] = a / b if a is not None and b else None
    return out


def _finished(f: RunFigures) -> str:
    return f"{f.conversations_finished} of {f.conversations_planned}"


def _tokens(f: RunFigures) -> str:
    return f"{f.prompt_tokens:,} / {f.cached_tokens:,} / {f.completion_tokens:,}"


def format_report(report: BenchReport) -> str:
    """The report as plain text: the figure table (a ratio column with two runs), then the context."""
    runs = report.runs
    header = ["", *(f.label for f in runs)] + (["ratio"] if report.ratio is not None else [])
    rows: list[list[str]] = [header]
    rows.append(["status", *(f.status for f in runs)])
    rows.append(["conversations finished", *(_finished(f) for f in runs)])
    rows.append(["kept trajectories", *(str(f.kept) for f in runs)])
    rows.append(["tokens: prompt / cached / generated", *(_tokens(f) for f in runs)])
    for title, path, fmt, in_ratio in _ROWS:
        row = [title, *(fmt(_get(path)(f)) for f in runs)]
        if report.ratio is not None:
            value = report.ratio.get(path) if in_ratio else None
            row.append("-" if value is None else f"{value:.2f}x")
        rows.append(row)
    rows = [r + [""] * (len(header) - len(r)) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        f"writ bench: {report.conversations} conversations per config"
        + (" on the same tasks" if report.same_tasks else "")
        + f", time limit {report.time_limit_s:g} s per config"
        + (" (interrupted: figures so far)" if report.interrupted else "")
    ]
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    if report.ratio_of:
        lines.append(f"ratio = {report.ratio_of}")
    lines += [f"projection: {p.text}" for p in report.projections]
    for f in runs:
        if f.status != "complete":
            unfinished = f.conversations_planned - f.conversations_finished
            why = "the time limit" if f.status == "time_limit" else "the interrupt"
            lines.append(
                f"{f.label}: stopped by {why} with {unfinished} conversations unfinished; "
                "their answered turns count in the token rates and latencies"
            )
    lines.append("hardware: " + _hardware_line(report.hardware))
    lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()))
    infos = {f.llama_cpp_system_info for f in runs if f.llama_cpp_system_info}
    lines += [f"llama.cpp build: {info}" for info in sorted(infos)]
    for f in runs:
        lines.append(f"{f.label}: {f.config}, backend {f.backend}, agent {f.agent_model}, user {f.user_model}")
        lines += [f"  {note}" for note in f.notes]
    return "\n".join(lines)


def _hardware_line(hw: dict[str, Any]) -> str:
    parts = [str(hw.get("cpu", "?")), f"{hw.get('cores', '?')} cores ({hw.get('usable_cores', '?')} usable)"]
    if hw.get("memory_gb") is not None:
        parts.append(f"{hw['memory_gb']:.1f} GB memory")
    if hw.get("load_1m") is not None:
        parts.append(f"load {hw['load_1m']:.2f} at start")
    parts.append("GPU: " + (", ".join(hw.get("gpus") or []) or "-"))
    return ", ".join(parts)

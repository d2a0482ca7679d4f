"""``writ bench CONFIG [--against CONFIG2]``: measure what a synthesis setup costs on this machine.

Each config runs in its own process (``engine.bench.child``) through the real run pipeline, into a
scratch directory (removed afterwards unless ``--keep``). Stages: 1) check the configs; 2) run
CONFIG on N freshly synthesized tasks; 3) with ``--against``, run CONFIG2 on the same task file
and DB (byte-identical tasks, checked by hash); 4) print the figures, a ratio column (CONFIG /
CONFIG2), the projection to ``--target`` kept trajectories, hardware and versions: as a table, or
as one JSON object with ``--json`` (also written to DIR/bench.json with ``--keep DIR``). Progress
goes to stderr; Ctrl-C stops the running child, which reports what it measured so far, and that
is printed (exit status 130).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer

from engine import interrupt
from engine.bench.report import BenchReport, RunFigures, format_report, projection, ratios
from engine.bench.system import hardware, versions
from engine.run.config import load_run_config

__all__ = ["BenchError", "bench"]

_ROOT = Path(__file__).resolve().parents[2]


class BenchError(ValueError):
    """The benchmark cannot run or a child failed; the message is one line."""


class _Status:
    """The progress line on stderr: rewritten in place on a terminal, one line per update otherwise."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.tty = sys.stderr.isatty()
        self.open = False

    def show(self, text: str) -> None:
        line = f"writ bench [{self.prefix}] {text}"
        sys.stderr.write(f"\r\x1b[K{line}" if self.tty else f"{line}\n")
        sys.stderr.flush()
        self.open = self.tty

    def end(self) -> None:
        if self.open:
            sys.stderr.write("\n")
            self.open = False


def _log_tail(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return " ".join(lines[-1].split())[:300] if lines else "an empty log"


@contextmanager
def _forward_signals(proc: subprocess.Popen[str]) -> Iterator[list[int]]:
    """While inside, SIGINT/SIGTERM go on to the child (which stops and reports) and are listed;
    a second one kills the child. Nothing is raised here, so no event of the child is lost."""
    signals: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        if signals:
            proc.kill()
        signals.append(signum)
        with suppress(ProcessLookupError):
            proc.send_signal(signum)

    if threading.current_thread() is not threading.main_thread():
        yield signals
        return
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield signals
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _play(
    config: Path, out: Path, label: str, *, conversations: int, time_limit: float, log: Path,
    status: _Status, tasks_file: str | None = None, db_path: str | None = None,
) -> tuple[RunFigures | None, dict[str, Any], int | None]:  # fmt: skip
    """Run one config in a child process: its figures, its ``planned`` event, the signal that stopped it.

    A first SIGINT/SIGTERM is passed on to the child, which stops and reports what it measured.
    """
    cmd = [
        sys.executable, "-m", "engine.bench.child", str(config), "--out", str(out), "--label", label,
        "--conversations", str(conversations), "--time-limit", str(time_limit),
    ]  # fmt: skip
    if tasks_file is not None and db_path is not None:
        cmd += ["--tasks-file", tasks_file, "--db-path", db_path]
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": str(_ROOT) + (os.pathsep + path if path else "")}
    events: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, text=True, encoding="utf-8")

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                events.put(json.loads(line))
            except json.JSONDecodeError:
                continue
        events.put(None)

    reader = threading.Thread(target=read, name="writ-bench-reader", daemon=True)
    reader.start()
    figures: RunFigures | None = None
    planned: dict[str, Any] = {}
    error: str | None = None
    told = False
    with _forward_signals(proc) as signals:
        while True:
            if signals and not told:
                status.show("interrupted: collecting the figures measured so far")
                told = True
            try:
                event = events.get(timeout=0.5)
            except queue.Empty:
                continue
            if event is None:
                break
            kind = event.get("event")
            if kind == "stage":
                status.show(str(event["text"]))
            elif kind == "planned":
                planned = event
            elif kind == "conversation":
                rate = event["generated"] / max(1e-9, event["elapsed_s"])
                status.show(
                    f"{event['finished']}/{event['total']} conversations, {event['kept']} kept, "
                    f"{rate:,.0f} generated tok/s, {event['elapsed_s']:.0f} s"
                )
            elif kind == "figures":
                figures = msgspec.convert(event["figures"], RunFigures)
            elif kind == "error":
                error = str(event["message"])
        code = proc.wait()
    stopped_by = signals[0] if signals else None
    status.end()
    if error is not None and stopped_by is None:
        raise BenchError(error)
    if figures is None and stopped_by is None:
        raise BenchError(
            f"the benchmark of {config} stopped with status {code} and no figures; its log ends: {_log_tail(log)}"
        )
    return figures, planned, stopped_by


def _labels(config: Path, against: Path | None) -> list[str]:
    if against is None:
        return [config.stem]
    if config.stem == against.stem:
        return [f"{config.stem}.1", f"{against.stem}.2"]
    return [config.stem, against.stem]


def _root(keep: Path | None) -> Path:
    if keep is None:
        return Path(tempfile.mkdtemp(prefix="writ-bench-"))
    if keep.exists() and (not keep.is_dir() or any(keep.iterdir())):
        raise BenchError(f"--keep {keep}: must be a new or empty directory")
    keep.mkdir(parents=True, exist_ok=True)
    return keep


_Conversations = Annotated[
    int | None,
    typer.Option("--conversations", "-n", min=1, help="Tasks to synthesize and play, one conversation each "
                 "[default: twice the config's max_live, so the engine stays full]."),
]  # fmt: skip
_TimeLimit = Annotated[
    float,
    typer.Option("--time-limit", min=1, help="Seconds of conversations per config; unfinished ones are then "
                 "cancelled and what finished counts."),
]  # fmt: skip
_Against = Annotated[
    Path | None,
    typer.Option("--against", help="A second config, run on the same tasks and DB in its own process; adds a "
                 "ratio column (CONFIG / CONFIG2)."),
]  # fmt: skip
_Target = Annotated[
    int | None,
    typer.Option("--target", min=1, help="Kept trajectories the projection aims at [default: CONFIG's [target] kept, "
                 "else 2000]."),
]  # fmt: skip
_Json = Annotated[bool, typer.Option("--json", help="Print one JSON object with every figure instead of the table.")]
_Keep = Annotated[
    Path | None,
    typer.Option("--keep", help="Keep the run directories, their logs and bench.json in this new or empty directory."),
]


def bench(
    config: Annotated[Path, typer.Argument(help="Run config (TOML) to measure, e.g. configs/quickstart.toml.")],
    conversations: _Conversations = None,
    time_limit: _TimeLimit = 600,
    against: _Against = None,
    target: _Target = None,
    json_out: _Json = False,
    keep: _Keep = None,
) -> None:
    """Benchmark a synthesis setup: the real pipeline on N tasks, timed; throughput, cache, latency, memory."""
    # 1) Check the configs before anything starts.
    first = load_run_config(config)
    if against is not None:
        second = load_run_config(against)
        if second.domain != first.domain:
            raise BenchError(
                f"--against: {against} plays {second.domain} and {config} plays {first.domain}; "
                "both configs must play the same domain"
            )
    if target is None:
        target = first.target.kept if first.target is not None else 2000
    n = conversations or 2 * first.max_live
    labels = _labels(config, against)
    root = _root(keep)
    machine, installed = hardware(), versions()
    runs: list[RunFigures] = []
    stopped_by: int | None = None
    try:
        # 2) The first config synthesizes the tasks and DB.
        total = 1 if against is None else 2
        status = _Status(f"1/{total} {labels[0]}")
        figures, planned, stopped_by = _play(
            config, root / labels[0], labels[0], conversations=n, time_limit=time_limit,
            log=root / f"{labels[0]}.log", status=status,
        )  # fmt: skip
        if figures is not None:
            runs.append(figures)
        # 3) The second plays them again, byte for byte.
        if against is not None and stopped_by is None:
            if not planned:
                raise BenchError(f"the benchmark of {config} reported no task file")
            status = _Status(f"2/2 {labels[1]}")
            figures, _, stopped_by = _play(
                against, root / labels[1], labels[1], conversations=n, time_limit=time_limit,
                log=root / f"{labels[1]}.log", status=status, tasks_file=planned["tasks_file"],
                db_path=planned["db_file"],
            )  # fmt: skip
            if figures is not None:
                runs.append(figures)
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if keep is None:
        runs = [msgspec.structs.replace(f, run_dir=None) for f in runs]
    if not runs:
        typer.echo("writ: interrupted before anything was measured", err=True)
        raise typer.Exit(interrupt.exit_status(stopped_by or signal.SIGINT))
    # 4) The report.
    pair = len(runs) == 2
    report = BenchReport(
        runs=runs,
        ratio=ratios(runs[0], runs[1]) if pair else None,
        ratio_of=f"{runs[0].label} / {runs[1].label}" if pair else None,
        same_tasks=runs[0].tasks_sha256 == runs[1].tasks_sha256 if pair else None,
        projections=[projection(f, target) for f in runs],
        target=target,
        conversations=n,
        time_limit_s=time_limit,
        interrupted=stopped_by is not None,
        hardware=machine,
        versions=installed,
    )
    encoded = msgspec.json.format(msgspec.json.encode(report), indent=2)
    if keep is not None:
        (keep / "bench.json").write_bytes(encoded + b"\n")
    if json_out:
        typer.echo(encoded.decode())
    else:
        typer.echo(format_report(report))
    if stopped_by is not None:
        raise typer.Exit(interrupt.exit_status(stopped_by))

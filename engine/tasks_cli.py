"""``writ tasks``: synthesize a task file, print its statistics, export it to tau2-bench's format.

The lead mounts ``tasks_app`` with ``app.add_typer(tasks_app, name="tasks")``. Bad input raises a
``ValueError`` subclass with a one-line message, which ``engine.cli.main`` prints.
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import Annotated

import typer

from engine.tasks.config import load_tasks_config
from engine.tasks.export_tau2 import export_file, read_tasks
from engine.tasks.model import Task
from engine.tasks.stats import heatmap, summary
from engine.tasks.synthesis import read_report, report_path, synthesize, write_tasks
from envs import get_domain

__all__ = ["TasksUsageError", "tasks_app"]


class TasksUsageError(ValueError):
    """A ``writ tasks`` invocation that cannot run; the message is one line."""


tasks_app = typer.Typer(
    help="Synthesize tasks along W (writes) and E (evidence reads); stats; tau2-bench export.",
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@tasks_app.callback()
def tasks_generate(
    ctx: typer.Context,
    domain: Annotated[str | None, typer.Option("--domain", "-d", help="A domain in envs/registry.py.")] = None,
    n: Annotated[int, typer.Option("--n", help="Number of tasks.", min=1)] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed: same seed, same bytes.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Task file to write (JSONL).")] = None,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="A tau2-bench or generated db.json (default: generate one)."),
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML file with a [tasks] table.")] = None,
    phrase_with: Annotated[
        Path | None,
        typer.Option(
            "--phrase-with",
            help="TOML with a backend table (a run config works: its [user], else [agent]); that model "
            "rewords each instruction, keeping the template where it would lose an id, date or number.",
        ),
    ] = None,
) -> None:
    """Generate N validated tasks for one domain and write them as JSONL (plus a report)."""
    if ctx.invoked_subcommand is not None:
        return
    if domain is None or out is None:
        raise TasksUsageError("writ tasks needs --domain and --out (or a subcommand: stats, export-tau2)")
    try:
        dom = get_domain(domain)  # unknown, or its package does not load: the registry's one-line reason
    except ValueError as exc:
        raise TasksUsageError(str(exc)) from None
    cfg = load_tasks_config(config)
    if db is not None:
        base = dom.load(db)
        source = str(db)
    else:
        base = dom.from_struct(dom.generate_db(users=cfg.users, seed=cfg.db_seed))
        source = f"generated DB ({cfg.users} users, seed {cfg.db_seed})"
    start = time.perf_counter()
    tasks, report = synthesize(domain, base, n, seed, cfg)
    elapsed = time.perf_counter() - start
    if phrase_with is not None:
        tasks, kept = _phrase(tasks, phrase_with)
        typer.echo(f"{len(tasks) - kept} instructions reworded by the model, {kept} kept the template")
    write_tasks(out, tasks, report)
    typer.echo(
        f"wrote {len(tasks)} {domain} tasks to {out} in {elapsed:.2f} s ({report.attempts} attempts) from {source}"
    )
    if len(tasks) < n:
        typer.echo(f"warning: only {len(tasks)} of {n} tasks could be made from this DB", err=True)


def _phrase(tasks: list[Task], path: Path) -> tuple[list[Task], int]:
    """Reword instructions with the model a TOML file's backend table names."""
    from engine.run.runner import phrase_tasks, resolve_backend_config

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TasksUsageError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TasksUsageError(f"{path}: not valid TOML: {exc}") from None
    section = data.get("user") or data.get("agent") or data
    if not isinstance(section, dict) or "backend" not in section:
        raise TasksUsageError(f"{path}: needs a backend table ([user] or [agent] with a 'backend' key)")
    return phrase_tasks(tasks, resolve_backend_config(section, Path.cwd()))


@tasks_app.command("stats")
def tasks_stats(
    file: Annotated[Path, typer.Argument(help="A task file (JSONL).")],
    png: Annotated[Path | None, typer.Option("--png", help="Write a W x E heat map here.")] = None,
) -> None:
    """Print the W x E table, trajectory types, intent kinds and rejection reasons."""
    tasks = read_tasks(file)
    report = read_report(file)
    if report is None and report_path(file).exists():
        stale = report_path(file)
        typer.echo(f"note: {stale} does not describe these tasks (stale); its counts are not shown", err=True)
    typer.echo(summary(tasks, report))
    if png is not None:
        heatmap(tasks, png, title=f"{file.name}: tasks per (W, E)")
        typer.echo(f"heat map: {png}")


@tasks_app.command("export-tau2")
def tasks_export(
    file: Annotated[Path, typer.Argument(help="A task file (JSONL).")],
    out: Annotated[Path, typer.Option("--out", help="tau2-bench task JSON to write.")],
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="The DB the tasks were made on, when it is not tau2-bench's own: written beside the tasks.",
        ),
    ] = None,
) -> None:
    """Export tasks to tau2-bench's task JSON (a list of Task objects).

    Tasks made on a generated DB are exported only with --db: tau2 would otherwise run them on its
    own DB, where every gold call fails.
    """
    count = export_file(read_tasks(file), out, db)
    typer.echo(f"exported {count} tasks to {out}")
    if db is not None:
        typer.echo(f"with their DB {out.with_name(out.stem + '.db.json')} (see {out.stem}.README.txt)")

"""The ``writ`` command line: environment tools, test models, tasks and runs."""

from __future__ import annotations

import os
import sys

from engine import interrupt

if os.path.basename(sys.argv[0]) == "writ":  # the console script: a signal during the imports below ends it cleanly
    interrupt.install(early=True)

import json
from pathlib import Path
from typing import Annotated, NoReturn

import msgspec
import typer

from engine.backends.base import BackendConfigError
from engine.files import write_atomic
from envs import DOMAINS, DBLoadError, get_domain
from envs.kernel import tau2_db_hash

__all__ = ["app", "main"]

app = typer.Typer(
    name="writ",
    help="Synthesize verified multi-turn tool-use trajectories with local models (WRIT).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
env_app = typer.Typer(help="The environment kernel: replay calls, generate DBs, list tools.",
                      no_args_is_help=True)
app.add_typer(env_app, name="env")


# Typer vendors click; its UsageError is BadParameter's base class whichever click it ships.
_USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class UserError(Exception):
    """Bad input from the user; printed as one line, exit status 2."""


def fail(message: str) -> NoReturn:
    """Stop with a one-line error."""
    raise UserError(message)


def _domain_name(value: str) -> str:
    if value not in DOMAINS:
        raise typer.BadParameter(f"choose one of: {', '.join(DOMAINS)}")
    return value


DomainOpt = Annotated[
    str, typer.Option("--domain", "-d", help="A domain in envs/registry.py.", callback=_domain_name)
]


class _ReplayCall(msgspec.Struct):
    name: str
    arguments: dict[str, object] = {}


class _ReplayTask(msgspec.Struct):
    task_id: str | int
    calls: list[_ReplayCall]


@env_app.command("replay")
def env_replay(
    domain: DomainOpt,
    db: Annotated[Path, typer.Option(help="The domain's db.json (tau2-bench's or generated).")],
    replays: Annotated[Path, typer.Option(help="JSONL: one task per line with its `calls`.")],
) -> None:
    """Run every task's calls on a fresh state; print {task_id, outputs, final_db_hash} per task."""
    dom = get_domain(domain)
    base = dom.load(db)
    decoder = msgspec.json.Decoder(_ReplayTask)
    bad = 0
    try:
        lines = replays.read_bytes().splitlines()
    except OSError as exc:
        fail(f"cannot read {replays}: {exc.strerror}")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            task = decoder.decode(line)
        except msgspec.DecodeError as exc:
            typer.echo(f"writ: {replays}:{number}: not a replay task: {exc}", err=True)
            bad += 1
            continue
        state = base.new_state()
        outputs = [dom.call(state, c.name, c.arguments).output for c in task.calls]
        record = {"task_id": task.task_id, "outputs": outputs, "final_db_hash": tau2_db_hash(state)}
        sys.stdout.write(json.dumps(record) + "\n")
    if bad:
        raise typer.Exit(1)


@env_app.command("generate")
def env_generate(
    domain: DomainOpt,
    out: Annotated[Path, typer.Option(help="Where to write the db.json.")],
    users: Annotated[int, typer.Option(min=1, help="Number of users; other tables scale with it.")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same bytes.")] = 0,
) -> None:
    """Write a seeded synthetic DB with tau2-bench's schema (into DIR/db.json if --out is a directory)."""
    db = get_domain(domain).generate_db(users=users, seed=seed)
    data = msgspec.json.encode(db)
    if out.is_dir():
        out = out / "db.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, data)
    sizes = ", ".join(f"{t}={len(getattr(db, t))}" for t in type(db).__struct_fields__)
    typer.echo(f"wrote {out} ({len(data) / 1e6:.1f} MB: {sizes})")


@env_app.command("tools")
def env_tools(domain: DomainOpt) -> None:
    """Print the domain's tools as OpenAI function schemas (JSON)."""
    typer.echo(json.dumps(get_domain(domain).openai_tools(), indent=2))


@env_app.command("policy")
def env_policy(
    domain: DomainOpt,
    path: Annotated[
        Path | None, typer.Option(help="A policy file to use instead (e.g. tau2-bench's policy.md).")
    ] = None,
) -> None:
    """Print the agent policy the domain uses."""
    typer.echo(get_domain(domain).policy(path))


def _register_commands() -> None:
    """Mount the commands that live beside their code."""
    from engine.bench.cli import bench
    from engine.run.cli import run
    from engine.stats import stats
    from engine.tasks_cli import tasks_app
    from engine.testmodel.cli import make_test_model

    app.command("run")(run)
    app.command("stats")(stats)
    app.add_typer(tasks_app, name="tasks")
    app.command("make-test-model")(make_test_model)
    app.command("bench")(bench)


_register_commands()


def main() -> None:
    """Entry point: run the app, turning expected failures and SIGINT/SIGTERM into one line.

    A signal stops the command where it is (``engine.interrupt``): exit status 130 for SIGINT,
    143 for SIGTERM; ``writ run`` first records what finished and says how to resume.
    """
    interrupt.install()
    try:
        status = app(standalone_mode=False)
    except interrupt.Interrupted as exc:
        typer.echo(f"writ: {exc.message}", err=True)
        status = exc.code
    except _USAGE_ERROR as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            typer.echo(exc.format_message())
            status = 0
        else:
            hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
            typer.echo(f"writ: error: {exc.format_message()}{hint}", err=True)
            status = 2
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("writ: aborted", err=True)
        status = 130
    except (UserError, DBLoadError, BackendConfigError, ValueError, OSError, ImportError) as exc:
        typer.echo(f"writ: error: {exc}", err=True)
        status = 2
    sys.exit(status if isinstance(status, int) else 0)

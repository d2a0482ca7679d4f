"""A domain (tools, DB schema, policy, generator) and the one error boundary that calls its tools."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import msgspec

from envs.kernel.arguments import ArgumentError, decode_arguments, printable
from envs.kernel.state import BaseDB, State, StateError
from envs.kernel.tool import Tool, ToolError, ToolKind

__all__ = ["BoundCall", "CallResult", "DBLoadError", "Domain", "Outcome"]


class DBLoadError(ValueError):
    """A database file could not be read; the message is one line."""


class Outcome(StrEnum):
    """How a tool call ended."""

    OK = "ok"
    """The tool ran; its writes, if any, are kept."""
    REFUSED = "refused"
    """The tool refused (a rule it enforces, a record that does not exist, a value the DB cannot hold)."""
    BAD_CALL = "bad_call"
    """The call never reached a tool: unknown name, or arguments that do not decode."""
    KERNEL_ERROR = "kernel_error"
    """A tool raised something other than a refusal: a bug in the kernel, never training data."""


class CallResult(msgspec.Struct, frozen=True, gc=False):
    """The typed outcome of one tool call; ``output`` renders it as tau2-bench's string.

    ``text`` is the tool's output when ``outcome`` is OK, else the one-line reason (without
    tau2's ``Error: `` prefix). ``fault`` (``"ExcType: message"``) is set only for KERNEL_ERROR.
    """

    outcome: Outcome
    text: str
    fault: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the tool ran."""
        return self.outcome is Outcome.OK

    @property
    def error(self) -> bool:
        """Whether tau2-bench would show this call as an error (any outcome but OK)."""
        return self.outcome is not Outcome.OK

    @property
    def output(self) -> str:
        """The string tau2-bench's environment returns for this call: the one place it is rendered."""
        return self.text if self.outcome is Outcome.OK else f"Error: {self.text}"


class BoundCall(msgspec.Struct, frozen=True, gc=False):
    """A call whose tool exists and whose arguments decoded: ready to run on any state."""

    tool: Tool
    kwargs: dict[str, Any]


class Domain:
    """Everything the kernel knows about one domain."""

    def __init__(
        self,
        name: str,
        toolkit_name: str,
        db_type: type[msgspec.Struct],
        tools: Iterable[Tool],
        policy_path: Path,
        generate_db: Callable[..., msgspec.Struct] | None = None,
        integrity: Callable[[Any], list[str]] | None = None,
        tasks: str | None = None,
        reference_db_hash: str | None = None,
    ) -> None:
        self.name = name
        self.toolkit_name = toolkit_name
        self.db_type = db_type
        self.tools: dict[str, Tool] = {t.name: t for t in tools}
        self.policy_path = policy_path
        self.db_generator = generate_db
        """``generate_db(users=, seed=)``: a seeded synthetic DB of this domain, or None."""
        self.integrity = integrity
        """``integrity(db)``: the problems found in a DB of this domain (empty when consistent)."""
        self.tasks = tasks
        """The module holding this domain's task recipes (its ``SPEC``), or None."""
        self.reference_db_hash = reference_db_hash
        """tau2-bench's hash of the DB it ships for this domain (None: tau2 has no such domain)."""
        self._db_decoder = msgspec.json.Decoder(db_type)

    # -- schemas -------------------------------------------------------------------------------
    def openai_tools(self) -> list[dict[str, Any]]:
        """Every tool in OpenAI's function-calling format, in declaration order."""
        return [t.openai_schema() for t in self.tools.values()]

    def tool_kind(self, name: str) -> ToolKind | None:
        """The kind of a tool, or None for an unknown name."""
        t = self.tools.get(name)
        return None if t is None else t.kind

    def policy(self, path: str | Path | None = None) -> str:
        """Our policy text, or the text of a given policy file (e.g. tau2-bench's policy.md)."""
        target = Path(path) if path is not None else self.policy_path
        try:
            return target.read_text(encoding="utf-8")
        except OSError as exc:
            raise DBLoadError(f"cannot read policy file {target}: {exc.strerror}") from None

    # -- databases -----------------------------------------------------------------------------
    def load(self, path: str | Path) -> BaseDB:
        """Load a tau2-bench (or generated) ``db.json`` as the shared base DB."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise DBLoadError(f"cannot read {self.name} DB {path}: {exc.strerror}") from None
        return self.load_bytes(data, source=str(path))

    def load_bytes(self, data: bytes, source: str = "<bytes>") -> BaseDB:
        """Load a DB from JSON bytes."""
        try:
            db = self._db_decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise DBLoadError(f"{source} is not a valid {self.name} DB: {exc}") from None
        return BaseDB(db)

    def from_struct(self, db: msgspec.Struct) -> BaseDB:
        """Wrap an in-memory DB (e.g. a generated one) as the shared base DB."""
        return BaseDB(db)

    def generate_db(self, users: int, seed: int) -> msgspec.Struct:
        """A synthetic DB with this domain's schema (seeded, deterministic)."""
        if self.db_generator is None:
            raise NotImplementedError(f"domain {self.name} has no DB generator")
        return self.db_generator(users=users, seed=seed)

    def check(self, db: msgspec.Struct) -> list[str]:
        """The integrity problems of a DB of this domain (none checked if it has no checker)."""
        return [] if self.integrity is None else self.integrity(db)

    # -- calls ---------------------------------------------------------------------------------
    def bind(self, name: object, arguments: object) -> BoundCall | CallResult:
        """The tool and its decoded arguments, or the BAD_CALL result saying why not (one line).

        The decode half of ``call``, and the only one: callers that only need to know whether a
        model's call is well formed (no state at hand) use it directly.
        """
        t = self.tools.get(name) if isinstance(name, str) else None
        if t is None:
            shown = name if isinstance(name, str) else type(name).__name__
            return CallResult(Outcome.BAD_CALL, printable(f"Tool '{shown}' not found."))
        try:
            return BoundCall(t, decode_arguments(t, self.toolkit_name, arguments))
        except ArgumentError as exc:
            return CallResult(Outcome.BAD_CALL, printable(str(exc)))

    def call(
        self,
        state: State,
        name: str,
        arguments: bytes | str | Mapping[str, Any],
        strict: bool = False,
    ) -> CallResult:
        """Run one tool call on ``state``: the one error boundary, which no input crosses.

        Always returns a ``CallResult`` and never half-applies a write. A refused or bad call
        leaves the state as it was. An exception other than ``ToolError`` escaping a tool is a
        kernel bug: the call is rolled back and its outcome is KERNEL_ERROR with ``fault`` naming
        the exception. With ``strict`` such an exception is re-raised instead (tests and task
        synthesis use it, so a kernel bug is never mistaken for a refusal).
        """
        # 1) decode: name and arguments -> tool and keyword arguments
        bound = self.bind(name, arguments)
        if type(bound) is CallResult:
            return bound
        return self.run(state, bound, strict)  # type: ignore[arg-type]

    def run(self, state: State, bound: BoundCall, strict: bool = False) -> CallResult:
        """Run a bound call on ``state`` in a transaction; its writes are kept only if all can be stored."""
        state.begin()
        try:
            output = state.commit_rendering(bound.tool.fn(state, **bound.kwargs))
        except (ToolError, StateError) as exc:
            state.rollback()
            return CallResult(Outcome.REFUSED, printable(str(exc)))
        except Exception as exc:
            state.rollback()
            if strict:
                raise
            text = printable(_exception_text(exc))
            return CallResult(Outcome.KERNEL_ERROR, text, printable(f"{type(exc).__name__}: {text}"))
        return CallResult(Outcome.OK, output)


def _exception_text(exc: BaseException) -> str:
    """``str(exc)`` on one line, even for an exception whose ``__str__`` fails."""
    try:
        text = str(exc)
    except Exception:
        text = f"<unprintable {type(exc).__name__}>"
    return " ".join(text.split()) or type(exc).__name__

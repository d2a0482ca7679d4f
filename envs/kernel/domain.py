"""A domain (tools, DB schema, policy, generator) and the one error boundary that calls its tools."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from envs.kernel.arguments import ArgumentError, decode_arguments, printable
from envs.kernel.dump import tool_output
from envs.kernel.state import BaseDB, State, StateError
from envs.kernel.tool import Tool, ToolError, ToolKind

__all__ = ["CallResult", "DBLoadError", "Domain"]


class DBLoadError(ValueError):
    """A database file could not be read; the message is one line."""


class CallResult(msgspec.Struct, frozen=True, gc=False):
    """What a tool call returned: the exact output string and whether it was an error.

    ``fault`` is set (``"ExcType: message"``) only when a tool raised something other than a
    refusal, i.e. a kernel bug; ``output`` is then an ``Error: ...`` line as for any refusal.
    """

    output: str
    error: bool
    fault: str | None = None


class Domain:
    """Everything the kernel knows about one domain."""

    def __init__(
        self,
        name: str,
        toolkit_name: str,
        db_type: type[msgspec.Struct],
        tools: Iterable[Tool],
        policy_path: Path,
        generate: Callable[..., msgspec.Struct] | None = None,
    ) -> None:
        self.name = name
        self.toolkit_name = toolkit_name
        self.db_type = db_type
        self.tools: dict[str, Tool] = {t.name: t for t in tools}
        self.policy_path = policy_path
        self.generator = generate
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
        return BaseDB(self, db)

    def from_struct(self, db: msgspec.Struct) -> BaseDB:
        """Wrap an in-memory DB (e.g. a generated one) as the shared base DB."""
        return BaseDB(self, db)

    def generate(self, users: int, seed: int) -> msgspec.Struct:
        """A synthetic DB with this domain's schema (seeded, deterministic)."""
        if self.generator is None:
            raise NotImplementedError(f"domain {self.name} has no DB generator")
        return self.generator(users=users, seed=seed)

    # -- calls ---------------------------------------------------------------------------------
    def _decode(self, name: object, arguments: object) -> tuple[Tool, dict[str, Any]]:
        """The tool and its keyword arguments; ``ArgumentError`` (one line) for any bad input."""
        t = self.tools.get(name) if isinstance(name, str) else None
        if t is None:
            shown = name if isinstance(name, str) else type(name).__name__
            raise ArgumentError(f"Tool '{shown}' not found.")
        return t, decode_arguments(t, self.toolkit_name, arguments)

    def validate_call(self, name: str, arguments: bytes | str | Mapping[str, Any]) -> str | None:
        """None when the call names a tool and its arguments decode, else the one-line error."""
        try:
            self._decode(name, arguments)
        except ArgumentError as exc:
            return printable(str(exc))
        return None

    def call(
        self,
        state: State,
        name: str,
        arguments: bytes | str | Mapping[str, Any],
        strict: bool = False,
    ) -> CallResult:
        """Run one tool call on ``state``: the one error boundary, which no input crosses.

        Always returns a ``CallResult`` and never half-applies a write. A refused call (bad name,
        bad arguments, a rule the tool enforces, a value the DB cannot hold) returns tau2-bench's
        ``Error: ...`` text and leaves the state as it was. An exception other than ``ToolError``
        escaping a tool is a kernel bug: the call is rolled back and refused as well, and
        ``fault`` names the exception. With ``strict`` such an exception is re-raised instead
        (tests use it to find kernel bugs).
        """
        # 1) decode: name and arguments -> tool and keyword arguments
        try:
            t, kwargs = self._decode(name, arguments)
        except ArgumentError as exc:
            return CallResult(printable(f"Error: {exc}"), True)
        # 2) run the tool in a transaction, and keep its writes only if all of them can be stored
        state.begin()
        try:
            output = tool_output(t.fn(state, **kwargs))
            state.commit()
        except (ToolError, StateError) as exc:
            state.rollback()
            return CallResult(printable(f"Error: {exc}"), True)
        except Exception as exc:
            state.rollback()
            if strict:
                raise
            text = _exception_text(exc)
            return CallResult(printable(f"Error: {text}"), True, printable(f"{type(exc).__name__}: {text}"))
        return CallResult(output, False)


def _exception_text(exc: BaseException) -> str:
    """``str(exc)`` on one line, even for an exception whose ``__str__`` fails."""
    try:
        text = str(exc)
    except Exception:
        text = f"<unprintable {type(exc).__name__}>"
    return " ".join(text.split()) or type(exc).__name__

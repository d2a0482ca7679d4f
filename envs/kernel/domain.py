"""A domain (tools, DB schema, policy, generator) and the one error boundary that calls its tools."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from envs.kernel.dump import tool_output
from envs.kernel.state import BaseDB, State
from envs.kernel.tool import Tool, ToolError, ToolKind

__all__ = ["CallResult", "DBLoadError", "Domain"]


class DBLoadError(ValueError):
    """A database file could not be read; the message is one line."""


class CallResult(msgspec.Struct, frozen=True, gc=False):
    """What a tool call returned: the exact output string and whether it was an error."""

    output: str
    error: bool


def _plural_args(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


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
    def _argument_error(self, t: Tool, arguments: Any, exc: Exception) -> str:
        """Explain bad arguments as tau2-bench would (Python's own TypeError text) where it can."""
        if isinstance(arguments, (bytes, str)):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                return f"tool arguments are not valid JSON: {exc}"
        if not isinstance(arguments, Mapping):
            return f"tool arguments must be a JSON object, got {type(arguments).__name__}"
        head = f"{self.toolkit_name}.{t.name}()"
        for key in arguments:
            if key not in t.param_names:
                return f"{head} got an unexpected keyword argument '{key}'"
        missing = [n for n in t.required if n not in arguments]
        if missing:
            noun = "argument" if len(missing) == 1 else "arguments"
            return f"{head} missing {len(missing)} required positional {noun}: {_plural_args(missing)}"
        return str(exc)

    def validate_call(self, name: str, arguments: bytes | str | Mapping[str, Any]) -> str | None:
        """None when the call names a tool and its arguments decode, else the one-line error."""
        t = self.tools.get(name)
        if t is None:
            return f"Tool '{name}' not found."
        try:
            t.decode(arguments)  # type: ignore[arg-type]
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return self._argument_error(t, arguments, exc)
        return None

    def call(
        self,
        state: State,
        name: str,
        arguments: bytes | str | Mapping[str, Any],
        strict: bool = False,
    ) -> CallResult:
        """Run one tool call on ``state``; never raises for any input, never half-applies a write.

        A refused call (bad name, bad arguments, a rule the tool enforces) returns tau2-bench's
        ``Error: ...`` text and leaves the state as it was. With ``strict`` an exception other
        than ``ToolError`` escaping a tool is re-raised: tests use it to find kernel bugs.
        """
        t = self.tools.get(name)
        if t is None:
            return CallResult(f"Error: Tool '{name}' not found.", True)
        try:
            kwargs = t.decode(arguments)  # type: ignore[arg-type]
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return CallResult(f"Error: {self._argument_error(t, arguments, exc)}", True)
        state.begin()
        try:
            result = t.fn(state, **kwargs)
            output = tool_output(result)
        except ToolError as exc:
            state.rollback()
            return CallResult(f"Error: {exc}", True)
        except Exception as exc:
            state.rollback()
            if strict:
                raise
            return CallResult(f"Error: {exc}", True)
        state.commit()
        return CallResult(output, False)

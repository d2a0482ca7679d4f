"""tau2-aligned mode: the agent sees tau2-bench's own policy and tool descriptions, read from the user's copy.

With ``tau2_root = "/path/to/tau2-bench"`` in a run config, the agent's system prompt holds
``<root>/data/tau2/domains/<domain>/policy.md`` verbatim, and each tool schema shown to the agent
takes its description and its parameters' descriptions from the docstring of the tool method of the
same name in ``<root>/src/tau2/domains/<domain>/tools.py`` (a Google-style docstring: summary, then
``Args:``, then ``Returns:``/``Raises:``). The source is parsed with ``ast``; tau2 is never imported
and none of its text ships with writ. A tool writ has and tau2's file does not keep writ's text.

``texts_record`` names the texts a run used (source, file and sha256) for the run's records, so
an exported conversation says whether it was made with writ's or tau2's texts.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import re
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["Tau2Texts", "Tau2TextsError", "apply_tool_docs", "load_tau2_texts", "texts_record"]

_SECTION = re.compile(r"^\s*(Args|Arguments|Returns|Raises|Yields|Examples?|Notes?)\s*:\s*$")
_ARG = re.compile(r"^(\s*)(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")


class Tau2TextsError(ValueError):
    """The tau2-bench copy lacks a file writ needs, or it cannot be parsed; the message is one line."""


class ToolDoc(msgspec.Struct, kw_only=True, frozen=True):
    """One tool's docstring, split: its description and each parameter's description."""

    description: str
    params: dict[str, str]


class Tau2Texts(msgspec.Struct, kw_only=True, frozen=True):
    """tau2-bench's policy and tool docs for one domain, with where they came from."""

    policy: str
    tools: dict[str, ToolDoc]
    policy_file: str
    tools_file: str
    policy_sha256: str
    tools_sha256: str


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise Tau2TextsError(f"tau2_root: cannot read tau2-bench's {what} {path}: {exc.strerror}") from None


def parse_docstring(doc: str) -> ToolDoc:
    """A Google-style docstring as a description (text before the first section) and ``Args:`` entries."""
    description: list[str] = []
    params: dict[str, str] = {}
    section = ""
    current: str | None = None
    indent = 0
    for line in doc.expandtabs().splitlines():
        head = _SECTION.match(line)
        if head:
            section, current = head.group(1), None
            continue
        if not section:
            description.append(line.strip())
        elif section in ("Args", "Arguments") and line.strip():
            arg = _ARG.match(line)
            if arg and (current is None or len(arg.group(1)) <= indent):
                current, indent = arg.group(2).lstrip("*"), len(arg.group(1))
                params[current] = arg.group(4).strip()
            elif current is not None:
                params[current] = (params[current] + " " + line.strip()).strip()
    text = "\n".join(description).strip()
    return ToolDoc(description=re.sub(r"\n{3,}", "\n\n", text), params=params)


def _is_tool(node: ast.FunctionDef) -> bool:
    for deco in node.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name == "is_tool":
            return True
    return False


def parse_tools_source(source: str, where: str = "tools.py") -> dict[str, ToolDoc]:
    """Every ``@is_tool`` method's docstring in a tau2 ``tools.py`` source, by method name."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise Tau2TextsError(f"tau2_root: {where} is not valid Python: {exc.msg} (line {exc.lineno})") from None
    docs: dict[str, ToolDoc] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and _is_tool(node):
            doc = ast.get_docstring(node)
            if doc:
                docs[node.name] = parse_docstring(doc)
    return docs


def load_tau2_texts(root: str | Path, domain: str) -> Tau2Texts:
    """tau2-bench's policy and tool docs for ``domain`` from a tau2-bench checkout at ``root``."""
    root = Path(root)
    policy_path = root / "data" / "tau2" / "domains" / domain / "policy.md"
    tools_path = root / "src" / "tau2" / "domains" / domain / "tools.py"
    policy = _read(policy_path, "policy")
    tools = _read(tools_path, "tools")
    try:
        policy_text, tools_text = policy.decode("utf-8"), tools.decode("utf-8")
    except UnicodeDecodeError:
        raise Tau2TextsError(f"tau2_root: {policy_path} or {tools_path} is not UTF-8") from None
    docs = parse_tools_source(tools_text, str(tools_path))
    if not docs:
        raise Tau2TextsError(f"tau2_root: no @is_tool methods with docstrings in {tools_path}")
    return Tau2Texts(
        policy=policy_text,
        tools=docs,
        policy_file=str(policy_path),
        tools_file=str(tools_path),
        policy_sha256=hashlib.sha256(policy).hexdigest(),
        tools_sha256=hashlib.sha256(tools).hexdigest(),
    )


def apply_tool_docs(tools: list[dict[str, Any]], docs: dict[str, ToolDoc]) -> list[dict[str, Any]]:
    """OpenAI tool schemas with descriptions replaced by ``docs`` where a tool of that name is there."""
    out = []
    for tool in tools:
        fn = tool.get("function", {})
        doc = docs.get(fn.get("name", ""))
        if doc is None:
            out.append(tool)
            continue
        tool = copy.deepcopy(tool)
        fn = tool["function"]
        fn["description"] = doc.description
        for name, prop in fn.get("parameters", {}).get("properties", {}).items():
            if name in doc.params:
                prop["description"] = doc.params[name]
        out.append(tool)
    return out


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def texts_record(policy: str, tools: list[dict[str, Any]], aligned: Tau2Texts | None) -> dict[str, Any]:
    """Which policy and tool texts the agent saw: ``{'source', 'policy_sha256', 'tools_sha256', ...}``.

    ``source`` is ``tau2`` in tau2-aligned mode (with the files read and their sha256), else
    ``writ``; ``shown_*`` are the digests of the exact policy and tool schemas given to the agent.
    """
    record: dict[str, Any] = {
        "source": "tau2" if aligned is not None else "writ",
        "shown_policy_sha256": _sha(policy),
        "shown_tools_sha256": _sha(msgspec.json.encode(tools, order="sorted").decode()),
    }
    if aligned is not None:
        record.update(
            policy_file="policy.md",
            policy_sha256=aligned.policy_sha256,
            tools_file="tools.py",
            tools_sha256=aligned.tools_sha256,
            tools_from_tau2=sorted(t["function"]["name"] for t in tools if t["function"]["name"] in aligned.tools),
        )
    return record

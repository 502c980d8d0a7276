#!/usr/bin/env bash
# Create .venv in the repository root (when missing) and install mssr with its test and cluster extras.
# The CPU build of torch is installed first, so that no multi-GB CUDA build is pulled in.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.mssr-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # A CPU wheel where the machine offers one; on a GPU machine plain pip picks the CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[test,cluster]"
  touch "$stamp"
fi

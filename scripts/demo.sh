#!/usr/bin/env bash
# Set up .venv if needed and run the demo pipeline on this machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/snakemake --cores "${CORES:-$(nproc)}" "$@"

#!/usr/bin/env bash
# Download the pure-Python wheels that the GPU device machine lacks, for its Python, into
# .gpu-wheels/ (ignored by git), so that benchmarks/gpu.sh can install them there offline:
#
#     bash scripts/gpu_wheels.sh            # prints the folder's size and the carry list
#
# The device machine reaches no package registry. Its python3 (CPython 3.12, x86-64) already
# holds a CUDA build of torch, numpy, scipy, h5py, pandas, scikit-image, matplotlib, safetensors,
# pyyaml, tqdm, filelock, regex, requests, pillow, huggingface-hub (>= 1.32, as diffusers 0.42
# needs), zipp, scikit-learn and seaborn (the device notes' package list). What mssr needs beyond
# that, all pure Python:
#   diffusers          (the pin in pyproject.toml)  the network and the schedulers
#   importlib-metadata (diffusers imports it; not in the device's list)
#   zipp               (importlib-metadata's one need; carried so its version matches)
#   nmrglue            (the pin in pyproject.toml)  NMRPipe/UCSF/Bruker files
#   makeshift-nmr      (the pin in pyproject.toml)  RefDB shifts for the synthetic plane
# Installed with --no-deps, so each dependency is named here; torch is never carried.
# Override the interpreter with PYTHON=..., the folder with WHEELS=...
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WHEELS=${WHEELS:-"$ROOT/.gpu-wheels"}
PYTHON=${PYTHON:-"$ROOT/.venv/bin/python"}
[ -x "$PYTHON" ] || PYTHON=python3
DEVICE_PYTHON=3.12  # the device notes (KINDS.md): python3 is Python 3.12.3

pin() {  # the version pinned in pyproject.toml's dependencies
    sed -n "s/^ *\"$1==\([^\"]*\)\".*/\1/p" "$ROOT/pyproject.toml" | head -n 1
}
DIFFUSERS=$(pin diffusers)
NMRGLUE=$(pin nmrglue)
MAKESHIFT=$(pin makeshift-nmr)
for v in DIFFUSERS NMRGLUE MAKESHIFT; do
    [ -n "${!v}" ] || { echo "gpu_wheels.sh: no pin for ${v,,} in pyproject.toml" >&2; exit 1; }
done

rm -rf "$WHEELS"
mkdir -p "$WHEELS"
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$DEVICE_PYTHON" --implementation py \
    --abi none --platform any -d "$WHEELS" \
    "diffusers==$DIFFUSERS" "nmrglue==$NMRGLUE" "makeshift-nmr==$MAKESHIFT" \
    "importlib-metadata==9.1.0" "zipp==4.1.2"

# Every wheel must be pure Python (any platform) and each name there once: two versions of one
# package stop the whole offline install.
names=$(for f in "$WHEELS"/*.whl; do basename "$f" | cut -d- -f1 | tr 'A-Z-' 'a-z_'; done | sort)
if [ -n "$(echo "$names" | uniq -d)" ]; then
    echo "gpu_wheels.sh: two versions of $(echo "$names" | uniq -d | tr '\n' ' ')in $WHEELS" >&2
    exit 1
fi
for f in "$WHEELS"/*.whl; do
    case "$f" in *-none-any.whl) ;; *) echo "gpu_wheels.sh: $f is not pure Python" >&2; exit 1 ;; esac
done
ls -1 "$WHEELS"
size=$(du -sb "$WHEELS" | cut -f1)
echo "size: $((size / 1024)) KiB in $(ls "$WHEELS" | wc -l) wheels (the working tree that travels may hold 64 MiB)"
echo "carry: [\"$(realpath --relative-to="$ROOT" "$WHEELS")\"]"

#!/usr/bin/env bash
# Copy the release run's native model into the package (mssr/enhance/model/), with its provenance.
# Usage: bash scripts/ship_model.sh [results/release/models/mssr_native [results/release/tables/network_weight.json]]
# The second file (rule network_weight: the network's weight by field ratio, measured on real validation
# planes) is shipped beside the model when it exists and was measured on these weights.
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-results/release/models/mssr_native}
calibration=${2:-results/release/tables/network_weight.json}
dst=mssr/enhance/model
for f in model.safetensors config.json history.csv; do
  [[ -f $src/$f ]] || { echo "ship_model: $src/$f is missing (train it: see configs/release.yaml)" >&2; exit 2; }
done
size=$(stat -c %s "$src/model.safetensors")
if (( size > 10 * 1024 * 1024 )); then
  echo "ship_model: $src/model.safetensors is $size bytes, over the 10 MB the package may carry" >&2; exit 2
fi
mkdir -p "$dst"
tmp=$(mktemp -d "$dst/.ship-XXXXXX")
cp "$src/model.safetensors" "$src/config.json" "$src/history.csv" "$tmp/"
shipped=(model.safetensors config.json history.csv PROVENANCE.json)
if [[ -f $calibration ]]; then
  .venv/bin/python - "$calibration" "$src/model.safetensors" <<'PY' || { rm -rf "$tmp"; exit 2; }
import hashlib, json, pathlib, sys
record = json.loads(pathlib.Path(sys.argv[1]).read_text())
sha = hashlib.sha256(pathlib.Path(sys.argv[2]).read_bytes()).hexdigest()
if record.get("model_weights_sha256") != sha:
    sys.exit(f"ship_model: {sys.argv[1]} was measured on other weights ({record.get('model_weights_sha256')}, not {sha})")
PY
  cp "$calibration" "$tmp/network_weight.json"
  shipped+=(network_weight.json)
fi
.venv/bin/python - "$src" "$tmp/PROVENANCE.json" <<'PY'
import json, sys, hashlib, pathlib, subprocess
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
cfg = json.loads((src / "config.json").read_text())
extra = cfg.get("extra", {})
record = {
    "source": str(src),
    "config": "configs/release.yaml",
    "git_commit_trained": extra.get("git_commit"),
    "git_commit_shipped": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
    "mlflow_run_id": extra.get("mlflow_run_id"),
    "tracking_uri": extra.get("tracking_uri"),
    "final": extra.get("final"),
    "weights_sha256": hashlib.sha256((src / "model.safetensors").read_bytes()).hexdigest(),
    "data_sha256": extra.get("data_sha256"),
}
out.write_text(json.dumps(record, indent=2) + "\n")
PY
[[ -f $calibration ]] || rm -f "$dst/network_weight.json"
for f in "${shipped[@]}"; do mv -f "$tmp/$f" "$dst/$f"; done
rmdir "$tmp"
chmod 0644 "$dst"/*
echo "shipped $(du -sh "$dst" | cut -f1) to $dst"

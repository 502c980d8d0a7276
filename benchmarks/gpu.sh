#!/usr/bin/env bash
# The GPU benchmarks in one call, for a bare device machine with one CUDA GPU, within 8 minutes:
#
#   1. benchmarks/bench_model.py --size paper --device cuda: sampling and training throughput in bf16,
#      MFU against the measured bf16 matmul ceiling and the nominal peak, batched vs naive,
#      channels_last / cudnn.benchmark / torch.compile / CUDA graphs (reduce-overhead)
#                                                      -> model_cuda_paper.json
#   2. benchmarks/bench_enhance.py --device cuda: `mssr enhance` of a 2048 x 1496 HSQC plane with the
#      default sampler and with the paper protocol (500 steps x 5 repeats)   -> enhance_cuda.json
#   3. time left: the training step of the release model (configs/release.yaml), if that file exists
#                                                      -> model_cuda_release.json
#
# Results go to "$OUT/benchmarks/results/" (OUT: the device tool's folder that comes back; default a
# new temporary folder), the logs to "$OUT/logs/", and a summary (gpu_summary_<mode>.json, and a table
# at the end of the output) is always written, whatever failed. Exit status 0 when every part that
# ran succeeded.
#
#   bash scripts/gpu_wheels.sh        # here, once: the wheels the device lacks, into .gpu-wheels/
#   device run: bash benchmarks/gpu.sh          carry [".gpu-wheels"], timeout_s 560
#   bash benchmarks/gpu.sh --smoke    # (or MSSR_GPU_SMOKE=1) the same parts on the CPU, tiny sizes (CI)
#
# On the device the carried wheels (pure Python, see scripts/gpu_wheels.sh) are installed with
# `pip install --no-index --no-deps --target`, never torch: its python3 has a CUDA build of torch.
# Environment: PYTHON (interpreter, default python3), WHEELS (wheel folder, default .gpu-wheels),
# MSSR_GPU_MODEL (a model directory for part 2; default: built, untrained, paper size),
# MSSR_GPU_SECONDS (the whole budget, default 470).
set -u
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SMOKE=${MSSR_GPU_SMOKE:-0}
for arg in "$@"; do
    case "$arg" in
        --smoke) SMOKE=1 ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "gpu.sh: unknown argument $arg (only --smoke)" >&2; exit 2 ;;
    esac
done
START=$(date +%s)
TOTAL=${MSSR_GPU_SECONDS:-470}
[ "$SMOKE" = 1 ] && TOTAL=${MSSR_GPU_SECONDS:-900}
OUT=${OUT:-$(mktemp -d /tmp/mssr_gpu.XXXXXX)}
RESULTS="$OUT/benchmarks/results"
LOGS="$OUT/logs"
mkdir -p "$RESULTS" "$LOGS"
PY=${PYTHON:-python3}
if [ "$SMOKE" = 1 ] && [ -z "${PYTHON:-}" ] && [ -x "$ROOT/.venv/bin/python" ]; then
    PY="$ROOT/.venv/bin/python"
fi
WHEELS=${WHEELS:-"$ROOT/.gpu-wheels"}
export PYTHONUNBUFFERED=1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# Outside $OUT: the device tool brings back at most 8 files (4 results + 3 part logs here).
SCRATCH=$(mktemp -d /tmp/mssr_gpu_scratch.XXXXXX)
STATUS="$SCRATCH/status.tsv"   # part, rc, seconds, file, note
SETUP_LOG="$SCRATCH/setup.log"  # its tail goes into the summary
: >"$STATUS"

left() { echo $((TOTAL - ($(date +%s) - START))); }
note() { echo "[gpu.sh $(date -u +%H:%M:%S), $(left) s left] $*"; }

# run_part NAME SECONDS RESULT_FILE COMMAND...: the command under a timeout, its output to the log.
run_part() {
    local name=$1 seconds=$2 file=$3; shift 3
    local t0 rc
    t0=$(date +%s)
    note "$name: up to $seconds s: $*"
    timeout --signal=TERM --kill-after=15 "$seconds" "$@" >"$LOGS/$name.log" 2>&1
    rc=$?
    [ $rc -eq 124 ] && note "$name: stopped at its $seconds s limit"
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" "$file" "" >>"$STATUS"
    tail -n 25 "$LOGS/$name.log"
    note "$name: exit $rc after $(( $(date +%s) - t0 )) s"
}

skip_part() {
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "skipped" 0 "" "$2" >>"$STATUS"
    note "$1: skipped: $2"
}

# --- setup: the carried wheels, then the imports on this machine's torch --------------------------
SETUP_OK=1
if compgen -G "$WHEELS/*.whl" >/dev/null; then
    SITE=$(mktemp -d /tmp/mssr_site.XXXXXX)
    if timeout 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
            "$WHEELS"/*.whl >"$SETUP_LOG" 2>&1; then
        export PYTHONPATH="$ROOT:$SITE${PYTHONPATH#"$ROOT"}"
        note "setup: installed $(ls "$WHEELS"/*.whl | wc -l) wheels into $SITE"
    else
        SETUP_OK=0
        note "setup: pip install of $WHEELS failed"; tail -n 20 "$SETUP_LOG"
    fi
else
    note "setup: no wheels in $WHEELS (run scripts/gpu_wheels.sh here first); using what $PY has"
fi
DEVICE=cuda
[ "$SMOKE" = 1 ] && DEVICE=cpu
if timeout 180 "$PY" - "$DEVICE" >>"$SETUP_LOG" 2>&1 <<'EOF'
import sys
import torch, diffusers, nmrglue, makeshift  # noqa: F401
import mssr
from mssr.model.network import PAPER_CONFIG, build_unet

device = sys.argv[1]
print("torch", torch.__version__, "cuda", torch.version.cuda, "diffusers", diffusers.__version__,
      "nmrglue", nmrglue.__version__, "mssr", mssr.__version__, "python", sys.version.split()[0])
if device == "cuda":
    if not torch.cuda.is_available():
        raise SystemExit("CUDA is not available to this torch")
    print("gpu", torch.cuda.get_device_name(0))
    unet = build_unet(PAPER_CONFIG).to("cuda").eval()  # one paper-size forward in bf16: the path works
    x = torch.randn(2, 2, 256, 256, device="cuda")
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        out = unet(x, torch.tensor([10, 20], device="cuda"), class_labels=torch.tensor([0, 1], device="cuda")).sample
    torch.cuda.synchronize()
    assert torch.isfinite(out).all(), "non-finite forward"
    print("paper forward ok", tuple(out.shape), out.dtype)
EOF
then
    note "setup: $(grep -E '^(torch|gpu|paper)' "$SETUP_LOG" | tr '\n' ';')"
else
    SETUP_OK=0
    note "setup: the import check failed:"; tail -n 30 "$SETUP_LOG"
fi
printf '%s\t%s\t%s\t%s\t%s\n' setup "$([ $SETUP_OK = 1 ] && echo 0 || echo 1)" "$(( $(date +%s) - START ))" "" \
    "$(grep -E '^(torch|gpu)' "$SETUP_LOG" | tr '\n\t' '; ')" >>"$STATUS"

# --- the parts ---------------------------------------------------------------------------------------
if [ $SETUP_OK = 1 ]; then
    if [ "$SMOKE" = 1 ]; then
        # Tiny sizes; the limits are backstops only, generous for a busy 2-core machine (each part takes
        # 10-40 s on two free cores).
        run_part model 400 "$RESULTS/model_smoke_demo.json" "$PY" benchmarks/bench_model.py --size demo \
            --device cpu --smoke --threads 2 --budget-seconds 300 --out "$RESULTS/model_smoke_demo.json"
        run_part enhance 300 "$RESULTS/enhance_smoke.json" "$PY" benchmarks/bench_enhance.py --device cpu \
            --smoke --threads 2 --runs 1 --timeout 120 --out "$RESULTS/enhance_smoke.json" \
            ${MSSR_GPU_MODEL:+--model "$MSSR_GPU_MODEL"}
        # The training-only path of part 3, on the demo network (the release config may not exist).
        run_part training 200 "$RESULTS/model_smoke_training.json" "$PY" benchmarks/bench_model.py --size demo \
            --device cpu --smoke --threads 2 --only training --out "$RESULTS/model_smoke_training.json"
    else
        # 1: paper network. Its stages stop starting at --budget-seconds; the timeout is the backstop,
        # and the JSON written after each stage survives it.
        run_part model 300 "$RESULTS/model_cuda_paper.json" "$PY" benchmarks/bench_model.py --size paper \
            --device cuda --budget-seconds 250 --out "$RESULTS/model_cuda_paper.json"
        # 2: enhancement of the full-size plane: every protocol run whole on CUDA (about 20 s a protocol).
        T=$(( $(left) - 30 )); [ $T -gt 120 ] && T=120
        if [ $T -ge 45 ]; then
            run_part enhance "$T" "$RESULTS/enhance_cuda.json" "$PY" benchmarks/bench_enhance.py --device cuda \
                --runs 1 --timeout $((T - 25)) --out "$RESULTS/enhance_cuda.json" \
                ${MSSR_GPU_MODEL:+--model "$MSSR_GPU_MODEL"}
        else
            skip_part enhance "only $(left) s left"
        fi
        # 3: the release model's training step, with what is left.
        T=$(( $(left) - 10 ))
        if [ ! -f configs/release.yaml ]; then
            skip_part training "configs/release.yaml does not exist"
        elif [ $T -lt 40 ]; then
            skip_part training "only $(left) s left"
        else
            run_part training "$T" "$RESULTS/model_cuda_release.json" "$PY" benchmarks/bench_model.py \
                --size release --device cuda --only training --budget-seconds $((T - 30)) \
                --out "$RESULTS/model_cuda_release.json"
        fi
    fi
fi

# --- the summary, whatever happened -------------------------------------------------------------------
MODE=$([ "$SMOKE" = 1 ] && echo smoke || echo cuda)
"$PY" - "$STATUS" "$RESULTS/gpu_summary_$MODE.json" "$MODE" "$(( $(date +%s) - START ))" "$SETUP_LOG" <<'EOF'
import datetime, json, os, sys

status, out, mode, seconds, setup_log = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
parts = []
for line in open(status, encoding="utf-8"):
    name, rc, took, path, note = (line.rstrip("\n").split("\t") + [""] * 5)[:5]
    row = {"part": name, "exit": rc, "seconds": int(took), "note": note or None}
    if path:
        row["file"] = os.path.basename(path)
        row["written"] = os.path.isfile(path)
        if row["written"]:
            try:
                record = json.load(open(path, encoding="utf-8"))
                row["complete"] = record.get("complete", True)
                row["targets"] = {k: {"met": v.get("met"), "measured": v.get("measured", v.get("measured_seconds"))}
                                  for k, v in (record.get("targets") or {}).items()
                                  if isinstance(v, dict) and "met" in v}
                row["skipped_inside"] = record.get("skipped") or None
            except (OSError, ValueError) as exc:
                row["complete"] = f"unreadable: {exc}"
    parts.append(row)
try:
    setup_tail = open(setup_log, encoding="utf-8", errors="replace").read()[-3000:]
except OSError:
    setup_tail = None
summary = {"what": "benchmarks/gpu.sh", "mode": mode, "date": datetime.datetime.now(datetime.timezone.utc)
           .isoformat(timespec="seconds"), "seconds": seconds, "parts": parts, "setup_log_tail": setup_tail}
with open(out, "w", encoding="utf-8") as f:
    json.dump(summary, f, indent=2)
print(f"\n{'part':10} {'exit':>7} {'s':>5}  file / note")
for r in parts:
    print(f"{r['part']:10} {r['exit']:>7} {r['seconds']:>5}  {r.get('file') or r.get('note') or ''}"
          + ("" if not r.get("file") else f"  written={r.get('written')} complete={r.get('complete')}"))
    for k, v in (r.get("targets") or {}).items():
        measured = v["measured"]
        print(f"{'':26}{k}: met={v['met']} measured={measured if not isinstance(measured, float) else round(measured, 3)}")
print(f"total {seconds} s; results in {os.path.dirname(out)}")
EOF
# Every part that ran must have succeeded.
if awk -F'\t' '$2 != "0" && $2 != "skipped" {bad = 1} END {exit bad}' "$STATUS"; then exit 0; else exit 1; fi

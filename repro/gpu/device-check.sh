#!/usr/bin/env bash
# The GPU check of docs/results/gpu: runs prebuilt `danas` and `device_bench`
# binaries (built with --features cuda; `cargo xtask bench --device cuda` builds
# them and runs this script) on the machine's first NVIDIA GPU and writes every
# figure under $OUT (default ./gpu-results):
#   env.txt            nvidia-smi, driver, libraries found
#   bench-cuda.jsonl   training steps (img/s per batch size), supernet evaluation
#   mem-*.txt          GPU memory samples (MiB, every 0.2 s) per phase
#   search-cuda.json / search-cpu.json   the demo search on the GPU and on this CPU
#   fidelity-cuda.json a small `danas fidelity` on the GPU
#   summary.json       the figures above in one object
# Usage: repro/gpu/device-check.sh BIN_DIR [PHASE_TIMEOUT_S]
set -u
BIN=${1:-.gpu}
T=${2:-170}
OUT=${OUT:-$PWD/gpu-results}
mkdir -p "$OUT"
export DANAS_CACHE=/tmp/danas-cache
WORK=/tmp/danas-gpu; rm -rf "$WORK"; mkdir -p "$WORK"

# Libraries cudarc loads at run time: the driver (libcuda) and NVRTC.
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
for f in $(find / -xdev \( -name 'libnvrtc.so*' -o -name 'libcuda.so*' \) 2>/dev/null | head -20); do
  LD_LIBRARY_PATH="$(dirname "$f"):$LD_LIBRARY_PATH"
done
export LD_LIBRARY_PATH
{
  date -u; uname -a; nproc; free -g | head -2
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  find / -xdev \( -name 'libnvrtc.so*' -o -name 'libcuda.so*' \) 2>/dev/null | head -20
  "$BIN/danas" --version
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

sampler() { # phase name: samples used GPU memory until killed
  while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null; sleep 0.2; done > "$OUT/mem-$1.txt" &
  SAMPLER=$!
}
phase() { # name, then the command
  local name=$1; shift
  echo "== $name: $*"
  sampler "$name"
  local t0; t0=$(date +%s%N)
  timeout "$T" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"
  local rc=$?
  kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null
  local t1; t1=$(date +%s%N)
  echo "$name rc=$rc wall_ms=$(( (t1 - t0) / 1000000 ))" | tee -a "$OUT/phases.txt"
  tail -5 "$OUT/$name.err"; tail -5 "$OUT/$name.out"
}

DANAS_DEVICE=cuda phase bench-cuda "$BIN/device_bench" --steps 20 --batches 32,128 --alpha 0.35 --res 96 --evals 5
DANAS_DEVICE=cuda phase search-cuda "$BIN/danas" search --out "$WORK/search-cuda" --json --final-top-k 1 --final-steps 100
DANAS_DEVICE=cpu phase search-cpu "$BIN/danas" search --out "$WORK/search-cpu" --json --final-top-k 1 --final-steps 100
DANAS_DEVICE=cuda phase fidelity-cuda "$BIN/danas" fidelity --candidates 4 --scratch-steps 60 --supernet-steps 60 --finetune-steps 10 --json
for n in bench-cuda search-cuda search-cpu fidelity-cuda; do cp "$OUT/$n.out" "$OUT/$n.json" 2>/dev/null; done
mv "$OUT/bench-cuda.json" "$OUT/bench-cuda.jsonl" 2>/dev/null
for d in search-cuda search-cpu; do [ -f "$WORK/$d/report.md" ] && cp "$WORK/$d/report.md" "$OUT/$d-report.md"; done
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def peak(name):
    try:
        v = [int(x) for x in open(os.path.join(out, f"mem-{name}.txt")).read().split() if x.strip().isdigit()]
        return {"peak_mib": max(v), "baseline_mib": v[0]} if v else None
    except OSError:
        return None
def load(name):
    try:
        return json.load(open(os.path.join(out, f"{name}.json")))
    except Exception as e:
        return {"error": str(e)}
bench = []
try:
    bench = [json.loads(l) for l in open(os.path.join(out, "bench-cuda.jsonl")) if l.strip().startswith("{")]
except OSError:
    pass
s = {"bench": bench, "gpu_memory": {n: peak(n) for n in ["bench-cuda", "search-cuda", "search-cpu", "fidelity-cuda"]},
     "phases": open(os.path.join(out, "phases.txt")).read().splitlines()}
for n in ["search-cuda", "search-cpu"]:
    j = load(n)
    s[n] = {k: j.get(k) for k in ["evaluated", "infeasible", "failed", "repeats", "elapsed_seconds", "best_feasible"] if isinstance(j, dict) and k in j} or j
for n in ["search-cuda", "search-cpu"]:
    d = s.get(n) or {}
    if isinstance(d, dict) and d.get("elapsed_seconds"):
        d["trials_per_minute"] = 60.0 * (d.get("evaluated", 0) + d.get("infeasible", 0)) / d["elapsed_seconds"]
        d["evaluated_per_minute"] = 60.0 * d.get("evaluated", 0) / d["elapsed_seconds"]
json.dump(s, open(os.path.join(out, "summary.json"), "w"), indent=1)
print(json.dumps(s, indent=1)[:3000])
PY

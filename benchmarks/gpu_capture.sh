#!/usr/bin/env bash
# Everything only a real GPU can give, in one run on a lent GPU machine (about 5 minutes on an H200):
#   nvidia-smi -q -x and an NVML recording (test fixtures), doctor and info as JSON, doctor's speed against
#   collect_env, bench of each preset with its calibration row and device ceiling (matmul / copy % of spec),
#   and the tests marked gpu. Every step runs even if an earlier one failed; each step's exit status is in
#   $OUT/steps.txt. Tested on the CPU with: DEVICE=cpu PRESETS=tutorial-cnn OUT=/tmp/capture bash benchmarks/gpu_capture.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-capture}
device=${DEVICE:-cuda}
presets=${PRESETS:-"tutorial-cnn resnet18"}
bin=${VENV:-.venv}/bin
mkdir -p "$out"
: > "$out/steps.txt"

step() {  # step NAME COMMAND...: run, keep stdout/stderr per step, record the status and the seconds taken
  local name=$1 started status
  shift
  started=$(date +%s.%N)
  "$@" > "$out/$name.out" 2> "$out/$name.err"
  status=$?
  printf '%-28s exit %3d  %6.1f s\n' "$name" "$status" "$(echo "$(date +%s.%N) - $started" | bc)" >> "$out/steps.txt"
}

date -u +%Y-%m-%dT%H:%M:%SZ > "$out/date.txt"
step nvidia-smi nvidia-smi -q -x
step info "$bin/envcheck" info --json --record-nvml "$out/nvml-recording.json"
step doctor "$bin/envcheck" doctor --json
step doctor-terminal "$bin/envcheck" doctor -v
step doctor-vs-collect-env "$bin/python" benchmarks/doctor_vs_collect_env.py --runs 3
for preset in $presets; do
  step "bench-$preset" "$bin/envcheck" bench --preset "$preset" --device "$device" --synthetic --no-save --json \
    --save-reference "$out/calibration.toml"
done
step pytest-gpu "$bin/python" -m pytest -q -p no:cacheprovider -m gpu
cat "$out/steps.txt"

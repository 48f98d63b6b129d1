#!/usr/bin/env bash
# Everything only a real GPU can give, in one run on a lent GPU machine (about 5 minutes on an H200):
#   nvidia-smi -q -x and an NVML recording (test fixtures), doctor and info as JSON, doctor's speed against
#   collect_env, bench of each preset with its calibration row and device ceiling (matmul / copy % of spec),
#   envcheck cluster with NCCL (and with NCCL_P2P_DISABLE=1) on every GPU, and the tests marked gpu. Every step
#   runs even if an earlier one failed; each step's exit status is in $OUT/steps.txt. Tested on the CPU with:
#   DEVICE=cpu PRESETS=tutorial-cnn OUT=/tmp/capture bash benchmarks/gpu_capture.sh
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
# envcheck cluster on the GPU(s): NCCL for the collectives (up to 1 GiB), gloo for the facts; the NCCL transport
# lines (NCCL_DEBUG=INFO) go to the step's .err for the parser still to be written (docs/cluster.md, "Not yet")
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
gpus=${gpus:-1}
[ "$gpus" -ge 1 ] || gpus=1
step cluster-nccl env NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,NET "$bin/python" -m torch.distributed.run --standalone \
  --nproc-per-node "$gpus" -m envcheck.cluster --backend nccl --timeout 60 --json
step cluster-nccl-p2p-off env NCCL_P2P_DISABLE=1 "$bin/python" -m torch.distributed.run --standalone \
  --nproc-per-node "$gpus" -m envcheck.cluster --backend nccl --timeout 60 --json
step cluster-gloo-2 env OMP_NUM_THREADS=1 "$bin/python" -m torch.distributed.run --standalone --nproc-per-node 2 \
  -m envcheck.cluster --backend gloo --timeout 60 --json
step pytest-gpu "$bin/python" -m pytest -q -p no:cacheprovider -m gpu
cat "$out/steps.txt"

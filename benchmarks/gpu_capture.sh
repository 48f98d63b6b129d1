#!/usr/bin/env bash
# Everything only a real GPU can give, in one run on a lent GPU machine (about 5 minutes on an H200):
#   nvidia-smi -q -x and an NVML recording (test fixtures), doctor and info as JSON, doctor's speed against
#   collect_env, bench of each preset with its calibration row and device ceiling (matmul / copy % of spec),
#   envcheck cluster with NCCL on every GPU (transports, busbw % of NVLink / PCIe, the P2P / SHM re-runs; the
#   NCCL INFO logs kept in $OUT/cluster-tmp), and the tests marked gpu. Every step
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
# envcheck cluster on the GPU(s): NCCL for the collectives (up to 1 GiB), gloo for the facts. Each rank writes its
# NCCL_DEBUG=INFO lines to $TMPDIR/envcheck-nccl-debug-rank<R>.log itself (so NCCL_DEBUG is not set here: a user's
# setting wins and the parser would get nothing); TMPDIR=$out/cluster-tmp keeps those logs and any flight-recorder
# dump for the parser's fixtures. Steps: the plain run (busbw as % of NVLink / PCIe, transports per rank), the
# Markdown report, P2P off by the user, a shortfall forced by the test seam so the repeat and the fresh-process
# re-runs with NCCL_P2P_DISABLE=1 / NCCL_SHM_DISABLE=1 run on real NCCL (exit 1 expected there), and a slowed rank.
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
gpus=${gpus:-1}
[ "$gpus" -ge 1 ] || gpus=1
mkdir -p "$out/cluster-tmp"
cluster() {  # cluster STEP [VAR=VALUE...] -- [OPTIONS...]
  local name=$1
  shift
  local vars=()
  while [ "$1" != "--" ]; do vars+=("$1"); shift; done
  shift
  step "$name" env TMPDIR="$out/cluster-tmp" "${vars[@]}" "$bin/python" -m torch.distributed.run --standalone \
    --nproc-per-node "$gpus" -m envcheck.cluster --backend nccl --timeout 60 "$@"
}
cluster cluster-nccl -- --json
cluster cluster-nccl-markdown -- --markdown
cluster cluster-nccl-p2p-off NCCL_P2P_DISABLE=1 -- --json
cluster cluster-nccl-shortfall ENVCHECK_CLUSTER_TEST_EXPECTED_GB_S=100000 -- --json --max-size-mib 256
# rank 0 slowed by the seam: with two GPUs or more it is the straggler, named with NVML's reading right after its
# GEMM (each rank's reading is its row's gpu_telemetry in every --json above, on one GPU too)
cluster cluster-nccl-straggler ENVCHECK_CLUSTER_TEST_SLOW_RANK=0 -- --json --max-size-mib 16
step cluster-gloo-2 env OMP_NUM_THREADS=1 "$bin/python" -m torch.distributed.run --standalone --nproc-per-node 2 \
  -m envcheck.cluster --backend gloo --timeout 60 --json
step pytest-gpu "$bin/python" -m pytest -q -p no:cacheprovider -m gpu
cat "$out/steps.txt"

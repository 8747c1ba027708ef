#!/usr/bin/env bash
# The whole learning loop on one GPU machine, in one command: build, bench the training shapes on
# every CUDA backend (events for time), measure energy on a few shapes (NVML), train the router,
# evaluate it on unseen shapes against every fixed backend and against plain torch_sdpa (PyTorch's
# own kernel order), write the HTML report, the store and a results table.
#
# From the repository root, after `source .devdeps/gpu-env.sh`:
#     bench/gpu/loop/run_loop.sh OUTDIR
# Budget: about 7 minutes on an H100 host with 16-32 cores, build included (PFA_LOOP_SECONDS,
# default 560, caps the whole run; each step gets what is left). Every step logs to OUTDIR and a
# failing step does not stop the ones after it that can still run. PFA_LOOP_BUILD (default
# /tmp/build-loop) is the build folder; PFA_LOOP_SKIP_BUILD=1 reuses a build already there.
set -euo pipefail

OUT=${1:?usage: bench/gpu/loop/run_loop.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
HERE=$REPO/bench/gpu/loop
BUILD=${PFA_LOOP_BUILD:-/tmp/build-loop}
LOG=$OUT/loop.log
STORE=$OUT/store.db
START=$(date +%s)
DEADLINE=$(( START + ${PFA_LOOP_SECONDS:-560} ))
JOBS=$(nproc)
: > "$LOG"

say() { printf '%s +%4ss %s\n' "$(date -u +%T)" "$(( $(date +%s) - START ))" "$*" | tee -a "$LOG"; }
# Seconds left for a step: what remains of the budget, at most $1, at least 5.
left() { local l=$(( DEADLINE - $(date +%s) )); [ "$l" -gt "$1" ] && l=$1; [ "$l" -lt 5 ] && l=5; echo "$l"; }
# Prefixes each line with the time since the start (progress in the log as it happens).
stamp() { while IFS= read -r line; do printf '+%4ss %s\n' "$(( $(date +%s) - START ))" "$line"; done; }
export START
export -f stamp
# step NAME CAP_SECONDS COMMAND...: runs it under a timeout, logs the outcome, never aborts.
step() {
  local name=$1 cap=$2; shift 2
  local t0 rc=0
  t0=$(date +%s)
  say "== $name (up to $(left "$cap") s)"
  timeout "$(left "$cap")" "$@" || rc=$?
  say "== $name: rc=$rc in $(( $(date +%s) - t0 )) s"
  return 0
}

# PFA_COMMIT names the commit when the tree is an export without its own git history.
if [ -n "${PFA_COMMIT:-}" ]; then
  COMMIT=$PFA_COMMIT
else
  COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git -C "$REPO" status --porcelain 2>/dev/null | grep -v '^??' || true)" ]; then
    COMMIT="$COMMIT+local changes"
  fi
fi
say "pfa loop: commit $COMMIT, $JOBS cores, output $OUT"
{
  echo "commit: $COMMIT"
  echo "date: $(date -u +%FT%TZ)"
  if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,temperature.gpu \
      --format=csv,noheader 2>&1 | head -1 | sed 's/^/gpu: /'
  else
    echo "gpu: no nvidia-smi on this machine"
  fi
  python3 -c 'import torch; print("torch:", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>/dev/null || echo "torch: not importable from python3"
} > "$OUT/device.txt" 2>&1 || true
sed 's/^/  /' "$OUT/device.txt" | tee -a "$LOG"

# ---- build ------------------------------------------------------------------------------------
# PFA_LOOP_SKIP_BUILD=1 reuses an existing build in $BUILD (a second run on a warm machine).
if [ "${PFA_LOOP_SKIP_BUILD:-0}" = 1 ] && [ -x "$BUILD/bin/pfa-tune" ]; then
  say "reusing the build in $BUILD"
else
step configure 90 bash -c "cmake -S '$REPO' -B '$BUILD' -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES=90a '-DPFA_FA3_HEAD_DIMS=64;128;256' > '$OUT/build.txt' 2>&1"
# -k 0: a plugin that fails to build leaves the others (and pfa-tune) to build.
step build 330 bash -c "cmake --build '$BUILD' -j'$JOBS' --target pfa-tune -- -k 0 \
  >> '$OUT/build.txt' 2>&1"
grep -E "error|FAILED" "$OUT/build.txt" | head -20 | tee -a "$LOG" || true
# A kernel plugin that does not compile against this LibTorch blocks pfa-tune (which depends on
# every plugin): build again without the three, so that the loop still runs on the rest.
if [ ! -x "$BUILD/bin/pfa-tune" ] && grep -q "FAILED: plugins/torch_sdpa/.*pfa_plugin_torch_sdpa_" "$OUT/build.txt"; then
  say "a torch_sdpa kernel plugin failed to build: building without them (PFA_TORCH_SDPA_KERNELS=OFF)"
  step "build without kernel plugins" 240 bash -c "cmake -DPFA_TORCH_SDPA_KERNELS=OFF '$BUILD' \
    >> '$OUT/build.txt' 2>&1 && cmake --build '$BUILD' -j'$JOBS' --target pfa-tune -- -k 0 \
    >> '$OUT/build.txt' 2>&1"
fi
fi
TUNE=$BUILD/bin/pfa-tune
if [ ! -x "$TUNE" ]; then
  say "pfa-tune did not build: nothing more to do (see build.txt)"
  exit 1
fi

step plugins 30 bash -c "'$TUNE' plugins > '$OUT/plugins.txt' 2>&1"
sed 's/^/  /' "$OUT/plugins.txt" | tee -a "$LOG"
BACKENDS=""
for b in cuda_fa3 torch_sdpa torch_sdpa_flash torch_sdpa_cudnn torch_sdpa_efficient; do
  if grep -q "^$b " "$OUT/plugins.txt"; then BACKENDS="${BACKENDS:+$BACKENDS,}$b"; fi
done
say "CUDA backends loaded: ${BACKENDS:-none}"
[ -n "$BACKENDS" ] || { say "no CUDA backend loaded"; exit 1; }

# ---- record: bench the training shapes (GPU time by events), then energy on a few shapes ------
rm -f "$STORE" "$STORE"-wal "$STORE"-shm
step "bench train ($(($(wc -l < "$HERE/train.csv") - 1)) shapes)" 130 bash -c \
  "set -o pipefail; '$TUNE' --store '$STORE' bench --shapes '$HERE/train.csv' --backends '$BACKENDS' \
     --repeat 5 --warmup 2 --energy-ms 0 2>&1 | stamp > '$OUT/bench_train.txt'"
tail -2 "$OUT/bench_train.txt" | tee -a "$LOG" || true
step "bench energy ($(($(wc -l < "$HERE/energy.csv") - 1)) shapes, NVML)" 60 bash -c \
  "'$TUNE' --store '$STORE' --json bench --shapes '$HERE/energy.csv' --backends '$BACKENDS' \
     --repeat 3 --warmup 2 --energy-ms 100 > '$OUT/bench_energy.json' 2> '$OUT/bench_energy.err'"

# ---- learn, then route unseen shapes ----------------------------------------------------------
step train 60 bash -c "'$TUNE' --store '$STORE' train --force > '$OUT/train.txt' 2>&1"
sed 's/^/  /' "$OUT/train.txt" | tee -a "$LOG" || true
step "evaluate ($(($(wc -l < "$HERE/test.csv") - 1)) unseen shapes)" 120 bash -c \
  "'$TUNE' --store '$STORE' --json evaluate --shapes '$HERE/test.csv' --repeat 5 --warmup 2 \
     > '$OUT/evaluate.json' 2> '$OUT/evaluate.err'"
step report 30 bash -c "'$TUNE' --store '$STORE' report --out '$OUT/report' > '$OUT/report.txt' 2>&1"
step results 20 python3 "$HERE/summarize.py" --out "$OUT/results.md" --evaluate "$OUT/evaluate.json" \
  --energy "$OUT/bench_energy.json" --device "$OUT/device.txt" --train "$OUT/train.txt"
[ -f "$OUT/results.md" ] && tee -a "$LOG" < "$OUT/results.md" > /dev/null && cat "$OUT/results.md"

# ---- the GPU tests of what this loop relies on, if time is left --------------------------------
if [ $(( DEADLINE - $(date +%s) )) -gt 60 ]; then
  step "build tests" 90 bash -c "cmake --build '$BUILD' -j'$JOBS' --target core_tests pfa_torch_tests \
     -- -k 0 >> '$OUT/build.txt' 2>&1"
  if [ -x "$BUILD/bin/core_tests" ]; then
    step "core tests (GPU timing, NVML)" 30 bash -c "'$BUILD/bin/core_tests' \
      --gtest_filter='GpuTiming*:NvmlEnergy*' > '$OUT/tests.txt' 2>&1"
  fi
  if [ -x "$BUILD/bin/pfa_torch_tests" ]; then
    step "torch kernel tests" 60 bash -c "PFA_BUILD_LIB_DIR='$BUILD/lib' '$BUILD/bin/pfa_torch_tests' \
      --gtest_filter='TorchSdpaKernels*' >> '$OUT/tests.txt' 2>&1"
  fi
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests? ran|^\[  FAILED  \]" "$OUT/tests.txt" 2>/dev/null \
    | tee -a "$LOG" || true
else
  say "no time left for the GPU tests"
fi
say "done; files: $(cd "$OUT" && ls | tr '\n' ' ')"

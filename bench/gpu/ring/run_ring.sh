#!/usr/bin/env bash
# On a machine with 2+ GPUs, in the project's root, after `source .devdeps/gpu-env.sh`:
#   bench/gpu/ring/run_ring.sh OUTDIR [COMMIT]
# Builds what the ring needs, runs its tests (the CPU plan/merge tests and the multi-GPU test),
# then the benchmark (one GPU against the ring, same inputs) on training lengths, recording every
# execution in a store, trains the router on it, and checks the router's split-or-not verdict on
# lengths it never saw against a second benchmark run. Writes summary.txt, build.txt, tests.txt,
# bench.md, bench_unseen.md, crossover.md, train.txt and ring.db to OUTDIR. NVLink multicast stays
# off.
set -uo pipefail
OUT=${1:?usage: run_ring.sh OUTDIR [COMMIT]}
COMMIT=${2:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PFA_COMMIT=$COMMIT
S="$OUT/summary.txt"
: > "$S"
say() { echo "$(date -u +%T) $*" | tee -a "$S"; }
say "commit $COMMIT"
nvidia-smi --query-gpu=index,name,driver_version,clocks.max.sm,power.limit --format=csv | tee -a "$S"
nvidia-smi topo -m >> "$S" 2>&1 || true

BUILD=${PFA_RING_BUILD:-/tmp/build-ring}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DPFA_WITH_TORCH=OFF -DPFA_FA3_HEAD_DIMS="64;128;256" > "$OUT/build.txt" 2>&1 \
  || { say "configure failed"; tail -30 "$OUT/build.txt" | tee -a "$S"; exit 1; }
grep -i "nccl" "$OUT/build.txt" | tee -a "$S"
cmake --build "$BUILD" -j"$(nproc)" --target pfa_ring_test pfa_ring_bench core_tests pfa-tune \
  >> "$OUT/build.txt" 2>&1 || { say "BUILD FAILED"; grep -E "error" "$OUT/build.txt" | head -30 | tee -a "$S"; exit 1; }
say "built"

{
  "$BUILD/bin/core_tests" --gtest_filter='Sharding*'
  "$BUILD/bin/pfa_ring_test"
} > "$OUT/tests.txt" 2>&1
grep -E "^\[  (PASSED|FAILED|SKIPPED) " "$OUT/tests.txt" | tee -a "$S"
say "tests done"

rm -f "$OUT/ring.db"
timeout 300 "$BUILD/bin/pfa_ring_bench" --store "$OUT/ring.db" ${PFA_RING_BENCH_ARGS:-} \
  > "$OUT/bench.md" 2> "$OUT/bench_err.txt"
say "bench rc=$?"
cat "$OUT/bench.md" | tee -a "$S" > /dev/null
tail -5 "$OUT/bench_err.txt" | tee -a "$S"

"$BUILD/bin/pfa-tune" train --store "$OUT/ring.db" > "$OUT/train.txt" 2>&1
say "train rc=$?"
tail -12 "$OUT/train.txt" >> "$S"

# Lengths the router never saw: measure them (not recorded), then ask the router.
UNSEEN=${PFA_RING_UNSEEN:-1536,3072,6144,12288,24576,49152,98304}
timeout 200 "$BUILD/bin/pfa_ring_bench" --lengths "$UNSEEN" > "$OUT/bench_unseen.md" 2>> "$OUT/bench_err.txt"
say "unseen bench rc=$?"
for causal in 0 1; do
  for L in ${UNSEEN//,/ }; do
    echo "$causal $L $("$BUILD/bin/pfa-tune" --json --store "$OUT/ring.db" route --split-over 2 \
      --shape "batch=1,heads=16,seqlen=$L,head_dim=128,dtype=bf16,causal=$causal,device=cuda" \
      | tr -d '\n')"
  done
done > "$OUT/route_unseen.txt" 2>&1
python3 bench/gpu/ring/crossover.py "$OUT/bench_unseen.md" "$OUT/route_unseen.txt" \
  > "$OUT/crossover.md" 2>&1
say "crossover rc=$?"
cat "$OUT/crossover.md" >> "$S"

#!/usr/bin/env bash
# One GPU call for kernel experiments kept as patches: builds the tree as it is and a copy with
# the given patches applied, runs every sm_90a test on the patched build, then times both builds
# in alternating rounds on the same card (same inputs, cuDNN in every run).
# Run from the repository root after `source .devdeps/gpu-env.sh`:
#   bench/gpu/experiments/try_patches.sh bench/gpu/experiments/a.patch [b.patch ...]
# PFA_TRY_BENCH_ARGS overrides the benchmark's arguments. Writes at most 8 files under $OUT.
set -u
OUT=${OUT:-/tmp/fa3-out}
mkdir -p "$OUT"
[ $# -ge 1 ] || { echo "usage: $0 patch..." >&2; exit 2; }
t0=$(date +%s)
stamp() { echo "$1 at $(( $(date +%s) - t0 )) s"; }
rm -rf /tmp/patched && mkdir -p /tmp/patched
tar --exclude=./.devdeps --exclude=./.ringsrc --exclude=./.ringold --exclude=./build -cf - . \
  | tar -xf - -C /tmp/patched
for p in "$@"; do
  abs=$(realpath "$p")
  (cd /tmp/patched && git apply "$abs") || { echo "patch $p does not apply" >&2; exit 1; }
done
cfg="-G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a"
(cmake -S . -B /tmp/bold $cfg > "$OUT/build_old.txt" 2>&1 &&
 cmake --build /tmp/bold -j8 --target pfa_fa3_bench >> "$OUT/build_old.txt" 2>&1) &
(cmake -S /tmp/patched -B /tmp/bnew $cfg -DPFA_CUDA_PTXAS_VERBOSE=ON > "$OUT/build_new.txt" 2>&1 &&
 cmake --build /tmp/bnew -j8 --target pfa_fa3_bench pfa_kernels_cuda_test >> "$OUT/build_new.txt" 2>&1)
new_rc=$?
wait $! ; old_rc=$?
stamp "builds: old rc $old_rc, patched rc $new_rc"
[ $new_rc -eq 0 ] && [ $old_rc -eq 0 ] || { grep -E "error" "$OUT"/build_*.txt | head -20; exit 1; }
timeout 300 /tmp/bnew/bin/pfa_kernels_cuda_test --gtest_brief=1 > "$OUT/tests.txt" 2>&1
stamp "tests rc $?"; tail -3 "$OUT/tests.txt"
args=${PFA_TRY_BENCH_ARGS:---variants --dims 64,128 --lens 512,1024,2048,8192 --repeats 9}
for r in 1 2; do
  for b in old new; do
    timeout 100 "/tmp/b$b/bin/pfa_fa3_bench" $args --out "$OUT/bench_${b}_$r.md" > /dev/null 2>&1
    stamp "bench $b round $r rc $?"
  done
done

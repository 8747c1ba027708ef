#!/usr/bin/env bash
# One GPU session's worth of work for cuda_fa3, in one command: build (whole project, or only the
# CUDA pieces through bench/gpu/standalone when the whole project can't be configured there),
# resource report (ptxas, cuobjdump, SASS instruction counts), correctness tests, sanitizers on a
# small shape, then the benchmark. Run from the repository root after
# `source .devdeps/gpu-env.sh`:  bench/gpu/run_on_gpu.sh <commit> [full|quick|tests]
# Writes at most 8 files under $OUT (build.txt, resources.txt, tests.txt, sanitizer.txt, bench.md,
# summary.txt).
set -u
OUT=${OUT:-/tmp/fa3-out}
mkdir -p "$OUT"
COMMIT=${1:-unknown}
MODE=${2:-full}
JOBS=$(nproc)
S="$OUT/summary.txt"
: > "$S"
say() { echo "$*" | tee -a "$S"; }

DEADLINE=$(( $(date +%s) + ${PFA_GPU_SECONDS:-570} ))
say "== $(date -u +%FT%TZ) commit $COMMIT mode $MODE"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv | tee -a "$S"

BUILD=/tmp/build
CFG="-G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DPFA_CUDA_PTXAS_VERBOSE=ON"
if cmake -S . -B $BUILD $CFG > "$OUT/build.txt" 2>&1; then
  say "configured the whole project"
else
  say "whole-project configure failed (see build.txt); building the CUDA pieces alone"
  BUILD=/tmp/build-sa
  cmake -S bench/gpu/standalone -B $BUILD $CFG >> "$OUT/build.txt" 2>&1 || { say "standalone configure failed"; exit 1; }
fi
t0=$(date +%s)
cmake --build $BUILD -j"$JOBS" --target pfa_kernels_cuda pfa_plugin_cuda_fa3 >> "$OUT/build.txt" 2>&1 \
  || { say "BUILD FAILED"; grep -E "error" "$OUT/build.txt" | head -30 | tee -a "$S"; exit 1; }
cmake --build $BUILD -j"$JOBS" --target pfa_kernels_cuda_test >> "$OUT/build.txt" 2>&1 || say "test build failed (see build.txt)"
cmake --build $BUILD -j"$JOBS" --target pfa_kernels_cuda_sm80_test >> "$OUT/build.txt" 2>&1 || say "sm80 test build failed (see build.txt)"
cmake --build $BUILD -j"$JOBS" --target pfa_fa3_bench >> "$OUT/build.txt" 2>&1 || say "bench build failed (see build.txt)"
say "build: $(( $(date +%s) - t0 )) s"

R="$OUT/resources.txt"
{
  echo "## ptxas -v (sm_90a entries)"
  grep -A2 "Compiling entry function.*for 'sm_90a'" "$OUT/build.txt" | grep -v '^--' | sed 's/ptxas info    : //'
  echo
  echo "## cuobjdump -res-usage"
  cuobjdump -res-usage $BUILD/lib/libpfa_kernels_cuda.a 2>&1 | grep -E "Function|REG" | sed 's/^ *//'
  echo
  echo "## SASS instruction counts per sm_90a kernel (HGMMA, UTMALDG, SYNCS, setmaxnreg=USETMAXREG, spills=LDL/STL)"
  cuobjdump -sass $BUILD/lib/libpfa_kernels_cuda.a 2>/dev/null | awk '
    /Function :/ { if (name != "") printf "%s HGMMA=%d UTMALDG=%d SYNCS=%d USETMAXREG=%d LDL=%d STL=%d MUFU.EX2=%d\n", name, h, u, s, r, l, st, e; name=$3; h=u=s=r=l=st=e=0 }
    /HGMMA/ {h++} /UTMALDG/ {u++} /SYNCS/ {s++} /USETMAXREG/ {r++} /LDL/ {l++} /STL/ {st++} /MUFU.EX2/ {e++}
    END { if (name != "") printf "%s HGMMA=%d UTMALDG=%d SYNCS=%d USETMAXREG=%d LDL=%d STL=%d MUFU.EX2=%d\n", name, h, u, s, r, l, st, e }'
} > "$R" 2>&1
grep -c HGMMA "$R" >/dev/null && say "sass: $(grep -c 'HGMMA=[1-9]' "$R") kernels with HGMMA, $(grep -c 'LDL=[1-9]\|STL=[1-9]' "$R") with local memory"

T=$BUILD/bin/pfa_kernels_cuda_test
# Every stage gets what is left of the command's 10 minutes (minus a margin), at most its own cap.
left() { local l=$(( DEADLINE - $(date +%s) )); [ $l -gt $1 ] && l=$1; [ $l -lt 5 ] && l=5; echo $l; }
# A quick look first: one shape per variant, so a hang shows up cheaply.
say "== smoke"
timeout $(left 45) $T --gtest_filter='*sm90_v*_b1_h2x2_q1000_k1000_d128_causal_bf16*:*sm90_b1_h2x2_q127_k127_d64_bf16*:*sm90_v*_persistent_b2_h16x4_q1000_k1000_d128_causal*:*sm90_b1_h2x2_q127_k127_d96_bf16*:*sm90_b1_h2x2_q127_k127_d192_bf16*' > "$OUT/tests.txt" 2>&1
rc=$?
say "smoke rc=$rc $(grep -c '^\[       OK' "$OUT/tests.txt") ok, $(grep -c '^\[  FAILED' "$OUT/tests.txt") failed"
grep "result" "$OUT/tests.txt" | tee -a "$S"
if [ $rc -eq 124 ]; then
  say "smoke hung: running the fallback tests only"
  timeout $(left 120) $T --gtest_filter='*fallback*:CudaFa3*:CudaAttentionSupport*' >> "$OUT/tests.txt" 2>&1
  say "fallback tests rc=$?"
  grep -E "^\[  FAILED  \] " "$OUT/tests.txt" | head -30 | tee -a "$S"
  say "== done $(date -u +%T)"
  exit 0
fi
say "== tests"
timeout $(left 280) $T >> "$OUT/tests.txt" 2>&1
say "tests rc=$?"
grep -E "^\[  (PASSED|FAILED) |tests? ran" "$OUT/tests.txt" | tail -4 | tee -a "$S"
grep -E "^\[  FAILED  \] " "$OUT/tests.txt" | head -60 | tee -a "$S"
T80=$BUILD/bin/pfa_kernels_cuda_sm80_test
if [ -x $T80 ]; then
  say "== sm80 tests (the mma.sync kernel, forced on this GPU)"
  timeout $(left 150) $T80 >> "$OUT/tests.txt" 2>&1
  say "sm80 tests rc=$?"
  grep -E "^\[  (PASSED|FAILED) |tests? ran" "$OUT/tests.txt" | tail -2 | tee -a "$S"
fi
if [ "$MODE" != "tests" ]; then
  if [ -x $BUILD/bin/pfa_fa3_bench ]; then
    say "== bench"
    ARGS="--commit $COMMIT --variants --out $OUT/bench.md"
    [ "$MODE" = quick ] && ARGS="$ARGS --quick"
    ARGS="$ARGS ${PFA_BENCH_ARGS:-}"  # e.g. "--dims 96,192" or "--lens 512,1024"
    timeout $(left 260) $BUILD/bin/pfa_fa3_bench $ARGS > "$OUT/bench_stdout.txt" 2>&1
    say "bench rc=$?"
    tail -5 "$OUT/bench_stdout.txt" >> "$S"
  fi
  if command -v ncu >/dev/null && [ -x $BUILD/bin/pfa_fa3_bench ]; then
    say "== ncu (D=128 L=8192 non-causal bf16, one launch per variant)"
    : > "$OUT/ncu.txt"
    for v in ${PFA_NCU_VARIANTS:-2 3}; do
      echo "### variant $v" >> "$OUT/ncu.txt"
      timeout $(left 60) ncu -k regex:fa3_fwd_kernel --launch-skip 2 -c 1 --section SpeedOfLight \
        --section ComputeWorkloadAnalysis --section WarpStateStats --section MemoryWorkloadAnalysis \
        $BUILD/bin/pfa_fa3_bench --single 128 8192 0 $v >> "$OUT/ncu.txt" 2>&1
      say "ncu v$v rc=$?"
    done
  fi
  say "== sanitizers"
  F='*sm90_b1_h2x2_q127_k127_d128_causal_bf16*:*sm90_b1_h2x2_q127_k127_d96_causal_bf16*:*sm90_v2_b1_h2x1_q333_k77_d64_causal_bf16*:*fallback_b1_h2x2_q127_k127_d40_causal_bf16*'
  timeout $(left 60) compute-sanitizer --tool memcheck $T --gtest_filter="$F" > "$OUT/sanitizer.txt" 2>&1
  say "memcheck rc=$? $(grep -E 'ERROR SUMMARY' "$OUT/sanitizer.txt" | tail -1)"
  timeout $(left 60) compute-sanitizer --tool racecheck $T --gtest_filter="$F" >> "$OUT/sanitizer.txt" 2>&1
  say "racecheck rc=$? $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/sanitizer.txt" | tail -1)"
fi
say "== done $(date -u +%T)"

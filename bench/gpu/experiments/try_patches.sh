#!/usr/bin/env bash
# One GPU call for kernel experiments kept as patches: builds the tree as it is and one copy per
# patch set, runs every sm_90a test on the last set's build, then times all builds in
# alternating rounds on the same card (same inputs, cuDNN in every run).
# Run from the repository root after `source .devdeps/gpu-env.sh`:
#   bench/gpu/experiments/try_patches.sh a.patch[,b.patch...] [c.patch,...] ...
# Each argument is one set: its comma-separated patches applied together to a copy of the tree.
# PFA_TRY_BENCH_ARGS overrides the benchmark's arguments, PFA_TRY_DIMS the head dims the
# benchmark-only builds compile (default "64;128"; keep it in step with the benchmark's --dims). Everything lands in $OUT/try.tgz
# (build logs, tests.txt, bench_<build>_<round>.md); a summary goes to standard output.
set -u
OUT=${OUT:-/tmp/fa3-out}
mkdir -p "$OUT"
[ $# -ge 1 ] || { echo "usage: $0 set [set ...]  (a set: p1.patch[,p2.patch...])" >&2; exit 2; }
W=/tmp/try-out
rm -rf "$W" && mkdir -p "$W"
t0=$(date +%s)
stamp() { echo "$1 at $(( $(date +%s) - t0 )) s"; }
sets=("$@")
n=${#sets[@]}
for i in $(seq 1 "$n"); do
  src=/tmp/patched$i
  rm -rf "$src" && mkdir -p "$src"
  tar --exclude=./.devdeps --exclude=./.ringsrc --exclude=./.ringold --exclude=./build -cf - . \
    | tar -xf - -C "$src"
  IFS=, read -ra patches <<< "${sets[$((i - 1))]}"
  for p in "${patches[@]}"; do
    abs=$(realpath "$p")
    (cd "$src" && git apply "$abs") || { echo "patch $p does not apply" >&2; exit 1; }
  done
  echo "set $i: ${sets[$((i - 1))]}"
done
cfg="-G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a"
# Benchmark-only builds serve the benchmark's head dims; the last set also builds every test.
quick="-DPFA_FA3_HEAD_DIMS=${PFA_TRY_DIMS:-64;128}"
jobs=$(( $(nproc) / (n + 1) + 1 ))
build() {  # name source extra-cmake-args target...
  local name=$1 src=$2 extra=$3
  shift 3
  cmake -S "$src" -B "/tmp/b$name" $cfg $extra > "$W/build_$name.txt" 2>&1 &&
    cmake --build "/tmp/b$name" -j"$jobs" --target "$@" >> "$W/build_$name.txt" 2>&1
}
pids=()
build old . "$quick" pfa_fa3_bench & pids+=($!)
for i in $(seq 1 "$n"); do
  if [ "$i" -eq "$n" ]; then
    build new$i /tmp/patched$i "-DPFA_CUDA_PTXAS_VERBOSE=ON" pfa_fa3_bench pfa_kernels_cuda_test &
  else
    build new$i /tmp/patched$i "$quick" pfa_fa3_bench &
  fi
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
stamp "builds rc $rc"
[ $rc -eq 0 ] || { grep -h -E "error" "$W"/build_*.txt | head -20; tar -czf "$OUT/try.tgz" -C "$W" .; exit 1; }
grep -h -A2 "Compiling entry.*sm_90a" "$W/build_new$n.txt" | grep -E "spill|registers" | sort | uniq -c
timeout 300 "/tmp/bnew$n/bin/pfa_kernels_cuda_test" --gtest_brief=1 > "$W/tests.txt" 2>&1
stamp "tests rc $?"; tail -3 "$W/tests.txt"
args=${PFA_TRY_BENCH_ARGS:---variants --dims 64,128 --lens 512,1024,2048,8192 --repeats 9}
for r in 1 2; do
  for b in old $(seq -f "new%g" 1 "$n"); do
    timeout 100 "/tmp/b$b/bin/pfa_fa3_bench" $args --out "$W/bench_${b}_$r.md" > /dev/null 2>&1
    stamp "bench $b round $r rc $?"
  done
done
tar -czf "$OUT/try.tgz" -C "$W" .

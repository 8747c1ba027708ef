#!/usr/bin/env bash
# Builds pfa's fuzz targets with clang's libFuzzer (+ AddressSanitizer and UBSan) and runs each for
# a bounded time from the seed corpus kept beside this script. Exit 77 (skipped) without clang.
# Targets: shape strings, shapes files, call validation, tuning databases (`pfa-tune import` and
# `merge`) and routing models (XGBoost JSON as the router loads it). PFA_FUZZ_TARGETS="a b" runs
# only those.
# Usage: run_fuzz.sh SOURCE_DIR WORK_DIR [SECONDS_PER_TARGET]
set -euo pipefail
src="$1"
work="$2"
seconds="${3:-${PFA_FUZZ_SECONDS:-15}}"
cxx="${PFA_FUZZ_CXX:-clang++}"
if ! command -v "$cxx" >/dev/null; then
  echo "skipped: $cxx not found (apt-get install clang libclang-rt-14-dev)"
  exit 77
fi
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long){return 0;}' |
    "$cxx" -x c++ -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
  echo "skipped: $cxx cannot link libFuzzer (apt-get install libclang-rt-14-dev)"
  exit 77
fi
mkdir -p "$work"
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$src/core/include" -I"$src/store/include" -I"$src/learner/include"
       -DPFA_VERSION_STRING=\"fuzz\")
core=("$src/core/src/problem.cpp" "$src/core/src/error.cpp" "$src/core/src/options.cpp")
declare -A extra=(
  [problem_string]=""
  [shapes_file]="$src/cli/common/shapes.cpp"
  [validate]="$src/core/src/validate.cpp"
  [tuning_file]="$src/cli/pfa_tune/tuning_file.cpp $src/store/src/store.cpp $src/store/src/schema.cpp -lsqlite3"
  [cost_model]="$src/learner/src/cost_model.cpp $src/learner/src/features.cpp $src/core/src/router.cpp $src/core/src/plugin.cpp $src/store/src/store.cpp $src/store/src/schema.cpp -lsqlite3 -lxgboost -ldl"
)
targets=(${PFA_FUZZ_TARGETS:-problem_string shapes_file validate tuning_file cost_model})
# Compile every target first, in parallel (the nlohmann-json ones take a while), then run them.
pids=()
for target in "${targets[@]}"; do
  # shellcheck disable=SC2086
  "$cxx" "${flags[@]}" "$src/tests/fuzz/fuzz_$target.cpp" "${core[@]}" ${extra[$target]} \
    -lfmt -lpthread -o "$work/fuzz_$target" > "$work/build_$target.log" 2>&1 &
  pids+=($!)
done
status=0
for i in "${!targets[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "FAILED: fuzz_${targets[$i]} does not build"
    cat "$work/build_${targets[$i]}.log"
    status=1
  fi
done
[ $status -eq 0 ] || exit $status
for target in "${targets[@]}"; do
  binary="$work/fuzz_$target"
  corpus="$work/corpus_$target"
  mkdir -p "$corpus"
  echo "== fuzz_$target: ${seconds}s"
  if ! "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$work/crash_${target}_" "$corpus" "$src/tests/fuzz/corpus/$target" \
      > "$work/fuzz_$target.log" 2>&1; then
    echo "FAILED: fuzz_$target found a crash; see $work/fuzz_$target.log and $work/crash_${target}_*"
    tail -40 "$work/fuzz_$target.log"
    status=1
  else
    grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs" "$work/fuzz_$target.log" | tail -1
  fi
done
exit $status

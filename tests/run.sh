#!/usr/bin/env bash
# Sets up and builds pfa if needed, runs the whole test suite, then runs the engine, store,
# learner and load tests again in an AddressSanitizer + UndefinedBehaviorSanitizer build, and the
# store, load and threaded learner tests in a ThreadSanitizer build.
# Extra arguments go to ctest. PFA_SANITIZE=0 skips the sanitizer stages.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/cli/setup.sh"
build="${PFA_BUILD_DIR:-$root/build}"

# After a failing run: each failed test's failure lines again, last, where a log's tail shows them.
summarise_failures() {
  local dir="$1" log="$1/Testing/Temporary/LastTest.log"
  [ -f "$log" ] || return 0
  echo "== failures (from $log)"
  awk '
    /^[0-9]+\/[0-9]+ Test: / { name = $3; n = 0; next }
    /^Test Failed\./ { for (i = 0; i < n; ++i) print name ": " lines[i]; next }
    /^(Command|Directory): / { next }
    /FAIL|[Ff]ailure|[Ee]rror|[Ee]xpected|Which is|wrong|over / { if (n < 12) lines[n++] = substr($0, 1, 300) }
  ' "$log"
}

if ! (cd "$build" && ctest --output-on-failure -j"$(nproc)" --timeout 600 "$@"); then
  summarise_failures "$build"
  exit 8
fi

if [ "${PFA_SANITIZE:-1}" != "0" ]; then
  echo "== sanitizer stage: ASan + UBSan build of the core, store, learner and load tests"
  asan="${build}-asan"
  flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
  if [ ! -f "$asan/build.ninja" ]; then
    cmake -S "$root" -B "$asan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPFA_WITH_TORCH=OFF \
      -DPFA_WITH_CUDA=OFF -DPFA_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS="$flags" \
      -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" \
      -DCMAKE_MODULE_LINKER_FLAGS="$flags"
  fi
  targets=(core_tests pfa_store_test learner_tests reliability_tests)
  cmake --build "$asan" -j"$(nproc)" --target "${targets[@]}"
  # Only those four binaries are built there: select their cases by label (the binary's name).
  (cd "$asan" && ctest --output-on-failure -j"$(nproc)" --timeout 600 \
    -L "^($(IFS='|'; echo "${targets[*]}"))\$")

  echo "== sanitizer stage: ThreadSanitizer build of the store, learner and load tests"
  tsan="${build}-tsan"
  flags="-fsanitize=thread -fno-omit-frame-pointer"
  if [ ! -f "$tsan/build.ninja" ]; then
    cmake -S "$root" -B "$tsan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPFA_WITH_TORCH=OFF \
      -DPFA_WITH_CUDA=OFF -DPFA_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS="$flags" \
      -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" \
      -DCMAKE_MODULE_LINKER_FLAGS="$flags"
  fi
  targets=(pfa_store_test learner_tests reliability_tests)
  cmake --build "$tsan" -j"$(nproc)" --target "${targets[@]}"
  # Any race report fails its test (TSan exits 66); no suppressions. XGBoost (Debian's, not built
  # with TSan) runs its loading and training in OpenMP regions of libgomp, whose barriers TSan
  # cannot see, so it reports the hand-over of XGBoost's own buffers between libgomp's threads as
  # races: one OpenMP thread keeps XGBoost on the thread that called it (pfa trains with one thread
  # by default anyway), and pfa's own threads stay fully checked.
  export OMP_NUM_THREADS=1
  export TSAN_OPTIONS="second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
  # Every store and load test; of the learner's, those that run threads (the router under model
  # swaps, the background learner, the decision cache): the rest train single-threaded and
  # take minutes under TSan for nothing.
  (cd "$tsan" && ctest --output-on-failure -j"$(nproc)" --timeout 600 \
    -L "^(pfa_store_test|reliability_tests)\$")
  (cd "$tsan" && ctest --output-on-failure -j"$(nproc)" --timeout 600 -L "^learner_tests\$" \
    -R "^(LearnedRouter|BackgroundLearner|SelfLearningRouter|DecisionCache)\\.")
fi

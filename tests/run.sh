#!/usr/bin/env bash
# Sets up and builds pfa if needed, runs the whole test suite, then runs the engine, store,
# learner and load tests again in an AddressSanitizer + UndefinedBehaviorSanitizer build.
# Extra arguments go to ctest. PFA_SANITIZE=0 skips the sanitizer stage.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/cli/setup.sh"
build="${PFA_BUILD_DIR:-$root/build}"
(cd "$build" && ctest --output-on-failure -j"$(nproc)" --timeout 600 "$@")

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
fi

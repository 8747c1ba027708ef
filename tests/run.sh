#!/usr/bin/env bash
# Sets up and builds pfa if needed, then runs the whole test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/cli/setup.sh"
cd "${PFA_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j"$(nproc)" --timeout 600 "$@"

#!/usr/bin/env bash
# pfa's main job in one command: set up and build if needed, then push a mixed attention workload
# through the engine on the default execution store and show what it chose.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/cli/setup.sh"
exec "${PFA_BUILD_DIR:-$root/build}/bin/pfa-demo" "$@"

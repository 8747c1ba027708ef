#!/usr/bin/env bash
# Runs a conformance command that must fail: exit status 1 and the named check marked FAIL.
# Usage: expect_failure.sh CHECK COMMAND...
set -uo pipefail
check="$1"
shift
output="$("$@" 2>&1)"
status=$?
echo "$output"
[ "$status" = 1 ] || { echo "expected exit status 1, got $status" >&2; exit 1; }
grep -Eq "^  $check +FAIL" <<< "$output" || { echo "expected check '$check' to FAIL" >&2; exit 1; }

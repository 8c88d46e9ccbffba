#!/usr/bin/env bash
# Sets up this machine (tools/setup.sh), then builds and runs every test with Bazel and ends
# with one line "N passed, N failed" counted from the test cases that really ran.
# Extra arguments go to `bazel test` (e.g. a target pattern instead of //...).
set -uo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh || exit 1

events=$(mktemp)
trap 'rm -f "$events"' EXIT
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(//...)
bazel test --keep_going --build_event_json_file="$events" "${targets[@]}"
status=$?

summary=$(python3 tools/test_summary.py "$events" "$(bazel info bazel-testlogs 2>/dev/null)")
summary_status=$?
echo "$summary"
[ $status -eq 0 ] && [ $summary_status -eq 0 ] || exit 1

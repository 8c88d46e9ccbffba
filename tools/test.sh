#!/usr/bin/env bash
# Sets up this machine (tools/setup.sh), then builds and runs every test with Bazel, then the
# sanitizer test sets (tools/sanitizers.sh: ASan + UBSan, and TSan), and ends with one line
# "N passed, N failed, N skipped" counted from the test cases that really ran, in all of them.
# Extra arguments go to `bazel test` (e.g. a target pattern instead of //...) and skip the
# sanitizer sets.
set -uo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh || exit 1

reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(//...)
bazel test --keep_going --build_event_json_file="$reports/default.events" "${targets[@]}"
status=$?
runs=("$reports/default.events" "$(bazel info bazel-testlogs 2>/dev/null)")

if [ $# -eq 0 ]; then
  tools/sanitizers.sh --report "$reports" asan tsan || status=1
  for name in asan tsan; do
    runs+=("$reports/$name.events" "$reports/$name.testlogs")
  done
fi

summary=$(python3 tools/test_summary.py "${runs[@]}")
summary_status=$?
echo "$summary"
[ $status -eq 0 ] && [ $summary_status -eq 0 ] || exit 1

#!/usr/bin/env bash
# Fuzzes one target of //fuzz with libFuzzer: fuzz/run.sh TARGET [SECONDS] [--merge]
#
# Builds it with --config=fuzz (clang, ASan + UBSan) in an output base of its own, starts from
# the committed corpus (fuzz/corpus/TARGET) plus what earlier runs found (in the work directory
# below), and stops after SECONDS (default 600). Findings (crash-*, leak-*, timeout-*, oom-*)
# land in the work directory's artifacts/TARGET/TIME/; reproduce one with
#   $work/bin/TARGET ARTIFACT   (or add it to fuzz/corpus/TARGET and run //fuzz:TARGET_replay).
# --merge adds the inputs that reach new coverage to the committed corpus.
# The last line is "TARGET: N executions in S s, F findings".
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:?usage: fuzz/run.sh TARGET [SECONDS] [--merge]}
seconds=${2:-600}
merge=${3:-}
work=${PROLONG_FUZZ_HOME:-$HOME/.cache/prolong-fuzz}
tools/setup.sh --fuzz >&2
artifacts="$work/artifacts/$target/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$work/bin" "$work/corpus/$target" "$artifacts"

bazel --output_base="$work/output_base" build --config=fuzz --symlink_prefix=/ "//fuzz:$target" >&2
bin_dir=$(bazel --output_base="$work/output_base" info --config=fuzz bazel-bin 2>/dev/null)
cp -f "$bin_dir/fuzz/$target" "$work/bin/$target"

log="$work/$target.log"
status=0
# Inputs stay in memory-sized bounds (rss_limit) and hang-free (timeout): either is a finding.
LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp:print_suppressions=0" \
  "$work/bin/$target" "$work/corpus/$target" "fuzz/corpus/$target" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?

if [ "$merge" = "--merge" ]; then
  "$work/bin/$target" -merge=1 "fuzz/corpus/$target" "$work/corpus/$target" >>"$log" 2>&1
fi
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
time=$(sed -n 's/^stat::.*//; s/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" | tail -1)
findings=$(find "$artifacts" -type f | wc -l)
[ $status -eq 0 ] || tail -40 "$log" >&2
echo "$target: ${runs:-0} executions in ${time:-$seconds} s, $findings findings (log: $log)"
[ $status -eq 0 ] && [ "$findings" -eq 0 ]

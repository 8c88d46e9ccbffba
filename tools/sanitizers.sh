#!/usr/bin/env bash
# Runs the test sets checked under sanitizers: tools/sanitizers.sh [--report DIR] asan|tsan...
#
#   asan  AddressSanitizer + UndefinedBehaviorSanitizer (--config=asan): common/, datamixer/,
#         the evaluator's parsers, metrics and result store, the scheduler's own tests, the
#         datamixer's gRPC service test, and every fuzz corpus replayed (the DataMixer and
#         Scheduler services in-process through real gRPC among them).
#   tsan  ThreadSanitizer (--config=tsan): the bounded queue, the datamixer's serving path and
#         gRPC service, the scheduler's own tests, and the DataMixer and Scheduler services
#         in-process through real gRPC (their fuzz corpora replayed: many calls, many threads).
#
# Each sanitizer builds in an output base of its own (under $PROLONG_SANITIZER_HOME, default
# ~/.cache/prolong-sanitizers), so that it and the default build never evict each other. Tests
# tagged no-asan / no-tsan stay out; docs/RELIABILITY.md lists them and why. With --report DIR,
# DIR/NAME.events and DIR/NAME.testlogs are left for tools/test_summary.py. Each set ends with
# "NAME: N passed, N failed, N skipped"; the exit status is 1 if any test failed.
set -uo pipefail
cd "$(dirname "$0")/.."

report=""
if [ "${1:-}" = "--report" ]; then
  report=$2
  shift 2
fi
[ $# -gt 0 ] || set -- asan

declare -A SETS=(
  [asan]="//common/... //datamixer/... //evaluator/metrics/... //evaluator/tasks/...
          //evaluator/results/... //scheduler/... //tests:datamixer_service_test //fuzz/...
          -//fuzz:evaluator_rpc_replay"
  [tsan]="//common:bounded_queue_test //datamixer/serve/... //tests:datamixer_service_test
          //scheduler/... //fuzz:datamixer_rpc_replay //fuzz:scheduler_rpc_replay"
)

home=${PROLONG_SANITIZER_HOME:-$HOME/.cache/prolong-sanitizers}
status=0
for name in "$@"; do
  [ -n "${SETS[$name]:-}" ] || { echo "sanitizers: unknown set $name (asan, tsan)" >&2; exit 2; }
  read -r -a targets <<<"$(echo ${SETS[$name]})"
  bazel=(bazel --output_base="$home/$name")
  events=$(mktemp)
  "${bazel[@]}" test --config="$name" --symlink_prefix=/ --keep_going --build_tests_only \
    --test_tag_filters="-no-$name" --build_event_json_file="$events" -- "${targets[@]}"
  testlogs=$("${bazel[@]}" info --config="$name" bazel-testlogs 2>/dev/null)
  summary=$(python3 tools/test_summary.py "$events" "$testlogs") || status=1
  echo "$name: $summary"
  if [ -n "$report" ]; then
    mkdir -p "$report"
    mv "$events" "$report/$name.events"
    ln -sfn "$testlogs" "$report/$name.testlogs"
  else
    rm -f "$events"
  fi
  # Its server would hold memory for the rest of the run.
  "${bazel[@]}" shutdown
done
exit $status

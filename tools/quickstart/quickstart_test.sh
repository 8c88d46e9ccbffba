#!/usr/bin/env bash
# The README's first command, shortened (quickstart.sh --short, under 5 minutes on 2 cores):
# from the machine's files to a trained three-stage run and its table, with the services this
# test depends on. Checks the table's shape, that its words agree with its numbers (the loss
# beyond stage 1's length fell after stage 2), and that a rerun reuses the corpus, the tokenizer,
# the store and the run.
set -euo pipefail
home=$TEST_TMPDIR/quickstart
first=$TEST_TMPDIR/first.log second=$TEST_TMPDIR/second.log

fail() {
  echo "FAIL: $1" >&2
  tail -60 "$2" >&2
  exit 1
}
quickstart() {  # LOG
  tools/quickstart/quickstart.sh --short --bin services --home "$home" --port-base 0 >"$1" 2>&1 ||
    fail "quickstart.sh exited $?" "$1"
}

quickstart "$first"
number='[0-9]+\.[0-9]+'
grep -qE '^stage +json_kv@1K +json_kv@2K +json_kv@4K +loss 0K-1K +loss 1K-2K +loss 2K-3K +loss 3K-4K$' \
  "$first" || fail "no table header" "$first"
for stage in stage1_1k stage2_4k sft; do
  grep -qE "^$stage( +$number){7}$" "$first" || fail "no row for $stage" "$first"
done
# The words, and the numbers they stand for: stage 2's mean loss over 1K-4K below stage 1's.
grep -q "Beyond stage 1's 1K tokens the loss fell after it: " "$first" ||
  fail "the table does not say the loss beyond 1K fell" "$first"
awk '$1 == "stage1_1k" { s1 = ($6 + $7 + $8) / 3 } $1 == "stage2_4k" { s2 = ($6 + $7 + $8) / 3 }
     END { exit !(s1 > 0 && s2 > 0 && s2 < s1) }' "$first" ||
  fail "the loss beyond 1K in the table did not fall" "$first"
run=$(sed -n 's/^run \(tiny-prolong-[0-9a-f]*\): .*/\1/p' "$first" | head -1)
[[ -n $run ]] || fail "no run id" "$first"

quickstart "$second"
for reused in "reusing $home/demo/corpus" "reusing $home/demo/tokenizer/demo.model" \
  "reusing $home/store" "run $run: "; do
  grep -qF "$reused" "$second" || fail "the rerun did not print '$reused'" "$second"
done
grep -q "evaluation stage2_4k step 100" "$second" || fail "the rerun's run has no evaluation" "$second"
echo "PASS: $(grep -c . "$first") lines; rerun reused run $run"

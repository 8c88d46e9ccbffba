#!/usr/bin/env bash
# The quickstart: ProLong's recipe on this machine, from a corpus to a table of scores.
#
#   1. builds a demo corpus in ProLong's domains from what the machine holds (demo_corpus.py)
#      and takes the chat set of recipes/tiny/;
#   2. trains a SentencePiece tokenizer of 2,048 pieces (with Llama 3's chat tokens) on it;
#   3. ingests every domain into the stack's store;
#   4. starts the embedded stack (`prolongctl up`: datamixer, evaluator, scheduler);
#   5. submits recipes/tiny.yaml (stage 1 at 1K, stage 2 at 4K with RoPE's base raised on 2
#      context-parallel workers, SFT) and watches it; the scheduler has each stage's last
#      checkpoint evaluated (JSON KV recall at 1K, 2K, 4K);
#   6. measures each of those checkpoints' loss by position on held-out books and prints one
#      table, stage by task and length, saying in words what stage 2 did to the loss beyond 1K.
#
# A rerun reuses what exists: the corpus, the tokenizer and the store, and the run itself (the
# submission's request id is the rendered recipe's hash, so the same recipe is the same run).
#
# Usage: quickstart.sh --bin DIR [--home DIR] [--short] [--port-base N] [--stay]
#   --bin        where the service binaries are (bazel-bin/services)
#   --home       the stack's home (default: $PROLONG_HOME/quickstart, ~/.prolong/quickstart;
#                with --short, quickstart-short)
#   --short      a quarter of the corpus and of the training, for tests (about 3 minutes)
#   --port-base  the stack's ports (prolongctl up --port-base; 0: any free ports)
#   --stay       keep the stack running after the table, until Ctrl-C
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)

bin="" home="" short=0 port_base=7400 stay=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --home) home=$2; shift 2 ;;
    --short) short=1; shift ;;
    --port-base) port_base=$2; shift 2 ;;
    --stay) stay=1; shift ;;
    *) sed -n '/^# Usage/,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
[[ -n "$bin" ]] || { echo "quickstart: --bin is required" >&2; exit 2; }
bin=$(cd "$bin" && pwd)
ctl=$bin/prolongctl/prolongctl
if [[ -z "$home" ]]; then
  home=${PROLONG_HOME:-$HOME/.prolong}/quickstart
  [[ $short == 1 ]] && home+=-short
fi
demo=$home/demo
mkdir -p "$demo"
started=$SECONDS
step() { printf '\n[%s, %ds] %s\n' "$1" $((SECONDS - started)) "$2"; }

# Stage sizes in tokens (batches of 2 x 1K or 1 x 4K tokens: a model this small learns from
# the number of updates more than from their size), and examples per task and length.
if [[ $short == 1 ]]; then
  stage1_tokens=$((2048 * 200)) stage2_tokens=$((4096 * 100)) sft_tokens=$((2048 * 30)) examples=3
else
  stage1_tokens=$((2048 * 800)) stage2_tokens=$((4096 * 300)) sft_tokens=$((2048 * 80)) examples=10
fi

step 1/6 "demo corpus"
if [[ -d $demo/corpus ]]; then
  echo "reusing $demo/corpus"
else
  rm -rf "$demo/corpus.partial"
  python3 "$repo/tools/quickstart/demo_corpus.py" "$demo/corpus.partial" --repository "$repo" \
    $([[ $short == 1 ]] && echo --short)
  mv "$demo/corpus.partial" "$demo/corpus"
fi

step 2/6 "tokenizer"
tokenizer=$demo/tokenizer/demo.model
if [[ -s $tokenizer ]]; then
  echo "reusing $tokenizer"
else
  rm -rf "$demo/tokenizer.partial" && mkdir -p "$demo/tokenizer.partial"
  if ! "$ctl" tokenizer train --input "$demo/corpus/tokenizer_sample.txt" --vocab-size 2048 \
      --special-tokens llama3-chat --out "$demo/tokenizer.partial/demo" \
      >"$demo/tokenizer.log" 2>&1; then
    tail -5 "$demo/tokenizer.log" >&2
    exit 1
  fi
  mv "$demo/tokenizer.partial" "$demo/tokenizer"
  echo "trained $tokenizer (2048 pieces, 256 of them bytes)"
fi

step 3/6 "ingest into $home/store"
if [[ -e $demo/ingested ]]; then
  echo "reusing $home/store"
else
  rm -rf "$home/store"
  ingest() {  # DOMAIN FORMAT INPUTS...
    local domain=$1 format=$2
    shift 2
    "$ctl" data ingest --store "$home/store" --domain "$domain" --format "$format" \
      --tokenizer "$tokenizer" "$@" 2>/dev/null | tail -1
  }
  ingest code_repos repo "$demo"/corpus/code_repos/*
  ingest books text "$demo"/corpus/books/*
  ingest books_heldout text "$demo"/corpus/books_heldout/*
  for domain in fineweb fineweb_edu stackexchange; do
    ingest "$domain" jsonl "$demo/corpus/$domain.jsonl"
  done
  ingest chat chat "$repo/recipes/tiny/chat.jsonl"
  touch "$demo/ingested"
fi

step 4/6 "the embedded stack (prolongctl up --home $home)"
"$ctl" up --home "$home" --port-base "$port_base" >"$home/up.log" 2>&1 &
up_pid=$!
stop_stack() {
  kill "$up_pid" 2>/dev/null || true
  wait "$up_pid" 2>/dev/null || true
}
trap stop_stack EXIT
for _ in $(seq 600); do
  grep -q "^stack up under" "$home/up.log" && break
  kill -0 "$up_pid" 2>/dev/null || { cat "$home/up.log" >&2; exit 1; }
  sleep 0.1
done
grep -q "^stack up under" "$home/up.log" || { cat "$home/up.log" >&2; exit 1; }
cat "$home/up.log"
address() { awk -v name="$1" '$1 == name && $2 == "grpc" { print $3; exit }' "$home/up.log"; }
scheduler=$(address scheduler) evaluator=$(address evaluator)

step 5/6 "training recipes/tiny.yaml"
spec=$demo/tiny.yaml
sed -e "s|\${DEMO}|$demo|g" -e "s|\${STAGE1_TOKENS}|$stage1_tokens|" \
  -e "s|\${STAGE2_TOKENS}|$stage2_tokens|" -e "s|\${SFT_TOKENS}|$sft_tokens|" \
  -e "s|\${EXAMPLES}|$examples|" \
  "$repo/recipes/tiny.yaml" >"$spec"
request=tiny-$(sha256sum "$spec" | cut -c1-16)
run_id=$("$ctl" run --scheduler "$scheduler" submit "$spec" --request-id "$request")
echo "run $run_id: $ctl run --scheduler $scheduler watch $run_id"
"$ctl" run --scheduler "$scheduler" watch "$run_id" || true
"$ctl" run --scheduler "$scheduler" get "$run_id" --json >"$demo/run.json"
state=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"])' "$demo/run.json")
if [[ $state != RUN_STATE_SUCCEEDED ]]; then
  echo "quickstart: run $run_id ended $state; its logs: $ctl run --scheduler $scheduler logs $run_id" >&2
  exit 1
fi

step 6/6 "scores of each stage's last checkpoint"
python3 "$repo/tools/quickstart/results_table.py" --ctl "$ctl" --run "$demo/run.json" \
  --scheduler "$scheduler" --evaluator "$evaluator" --store "$home/store" \
  --heldout books_heldout --max-length 4096 --bucket 1024 | tee "$demo/table.txt"

metrics=$(awk '$1 == "scheduler" { print $5; exit }' "$home/up.log")
cat <<DONE

Done in $((SECONDS - started)) s. Everything is under $home:
  watch a run:   $ctl run --scheduler $scheduler watch $run_id   (or: run list, run get, run logs)
  metrics:       $metrics (and each service's, above; deploy/prometheus/prometheus.yml scrapes
                 them, deploy/grafana/ has the dashboard)
  the table:     $demo/table.txt
DONE
if [[ $stay == 1 ]]; then
  echo "The stack keeps running; Ctrl-C stops it."
  wait "$up_pid"
fi

#!/usr/bin/env python3
"""Prints the quickstart's table: each stage's last checkpoint by task and length, and by
position, with what the numbers say about the recipe in words.

For each stage of the run (from `prolongctl run get --json`), its last checkpoint's evaluation
(`prolongctl eval show RUN:STAGE:STEP --json`, the scheduler's raw evaluation) gives a column
per task and input length, and its loss by position on held-out documents (`prolongctl eval
position-loss --json`) a column per bucket. Below the table: whether the loss at positions
beyond stage 1's sequence length fell after stage 2, which is what ProLong's second stage is
for. Exits 1 if a number is missing.
"""

import argparse
import json
import subprocess
import sys


def field(message, name):
    """A proto JSON field by its proto name or its lowerCamel JSON name."""
    if name in message:
        return message[name]
    parts = name.split("_")
    return message.get(parts[0] + "".join(p.title() for p in parts[1:]))


def ctl_json(ctl, *args):
    result = subprocess.run([ctl, *args], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"results_table.py: prolongctl {' '.join(args)}: {result.stderr.strip()}")
    return json.loads(result.stdout)


def short_length(tokens):
    return f"{tokens // 1024}K" if tokens % 1024 == 0 else str(tokens)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ctl", required=True)
    parser.add_argument("--run", required=True, help="the run as `run get --json` prints it")
    parser.add_argument("--scheduler", required=True)
    parser.add_argument("--evaluator", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--heldout", required=True, help="the store's held-out long domain")
    parser.add_argument("--max-length", type=int, default=4096)
    parser.add_argument("--bucket", type=int, default=1024)
    args = parser.parse_args()

    with open(args.run) as f:
        run = json.load(f)
    run_id = field(run, "run_id")
    stages = field(run, "spec")["stages"]
    plans = field(run, "stage_plans")
    checkpoints = field(run, "checkpoints") or []

    rows = []  # (stage name, seq_len, {column: value}, [(begin, loss, tokens) per bucket])
    columns = []
    for stage, plan in zip(stages, plans):
        name, steps = stage["name"], int(plan["steps"])
        last = [c for c in checkpoints if c["stage"] == name and int(c.get("step", 0)) == steps]
        if not last:
            sys.exit(f"results_table.py: run {run_id} has no checkpoint of {name} at step {steps}")
        values = {}
        evaluation = ctl_json(args.ctl, "eval", "show", f"{run_id}:{name}:{steps}", "--json",
                              "--scheduler", args.scheduler, "--evaluator", args.evaluator)
        for result in field(evaluation, "results") or []:
            metric = field(result, "primary_metric")
            column = f"{result['task']}@{short_length(int(field(result, 'input_length')))}"
            values[column] = result["metrics"][metric]
        loss = ctl_json(args.ctl, "eval", "position-loss", "--checkpoint", last[0]["path"],
                        "--store", args.store, "--domain", args.heldout, "--max-length",
                        str(args.max_length), "--bucket", str(args.bucket), "--json")
        for bucket in loss["buckets"]:
            if bucket["tokens"] > 0:
                column = f"loss {short_length(bucket['begin'] // args.bucket * args.bucket)}-" \
                         f"{short_length(bucket['end'])}"
                values[column] = bucket["mean_loss"]
        buckets = [(b["begin"], b["mean_loss"], b["tokens"]) for b in loss["buckets"]]
        columns += [column for column in values if column not in columns]
        rows.append((name, int(stage["seq_len"]), values, buckets))

    scores = [c for c in columns if not c.startswith("loss")]
    losses = [c for c in columns if c.startswith("loss")]
    print(f"run {run_id}: each stage's last checkpoint; JSON KV recall (substring exact match, "
          f"0-100) by input length, and mean next-token loss on held-out books by position")
    header = ["stage"] + scores + losses
    widths = [max(12, len(h)) for h in header]
    print("  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths))))
    for name, _, values, _ in rows:
        cells = [name] + [f"{values[c]:.1f}" if c in values else "-" for c in scores] + \
                [f"{values[c]:.3f}" if c in values else "-" for c in losses]
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))))

    # Stage 2 against stage 1 beyond stage 1's length (token-weighted over those buckets).
    if len(rows) >= 2:
        stage1, stage2 = rows[0], rows[1]
        boundary = stage1[1]

        def mean_loss(buckets, beyond):
            chosen = [(loss, tokens) for begin, loss, tokens in buckets
                      if (begin >= boundary) == beyond]
            total = sum(tokens for _, tokens in chosen)
            return sum(loss * tokens for loss, tokens in chosen) / total if total else None

        before, after = mean_loss(stage1[3], True), mean_loss(stage2[3], True)
        within_before, within_after = mean_loss(stage1[3], False), mean_loss(stage2[3], False)
        if before is None or after is None:
            sys.exit("results_table.py: no positions beyond stage 1's length were measured")
        verdict = "fell" if after < before else "did not fall"
        gain_beyond, gain_within = before - after, within_before - within_after
        if gain_beyond > gain_within + 0.01:
            meaning = (f"more than within {short_length(boundary)} ({within_before:.3f} -> "
                       f"{within_after:.3f}): the model now uses context beyond the length stage "
                       f"1 trained on, which is what ProLong's second stage is for")
        else:
            meaning = (f"about as much as within {short_length(boundary)} ({within_before:.3f} -> "
                       f"{within_after:.3f}): at this size and length stage 2 mostly trained the "
                       f"model further; the gap beyond the first stage's length opens with more "
                       f"training and longer documents")
        print()
        print(f"Stage 2 trained on {short_length(stage2[1])}-token sequences with RoPE's base "
              f"raised, as ProLong's second stage does at 512K. Beyond stage 1's "
              f"{short_length(boundary)} tokens the loss {verdict} after it: {before:.3f} -> "
              f"{after:.3f} at positions {short_length(boundary)}-{short_length(args.max_length)}, "
              f"{meaning}. A model this small recalls little; the scores show the protocol, not "
              f"ProLong-8B's numbers.")

if __name__ == "__main__":
    main()

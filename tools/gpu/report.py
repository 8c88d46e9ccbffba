#!/usr/bin/env python3
"""Markdown tables from tools/gpu/check.py's JSON, for docs/BENCHMARKS.md.

Usage: python3 tools/gpu/report.py gpu_check.json
"""
import json
import sys


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def checks(results):
    """Every correctness check: its largest errors and whether it passed."""
    rows = []
    for name, entry in results.items():
        if not isinstance(entry, dict) or name.startswith("layer_8b_"):
            continue
        errors = {k: v for k, v in entry.items() if k.endswith(("_error", "_relative_error"))
                  and isinstance(v, float)}
        failed = [k[:-3] for k, v in entry.items() if k.endswith("_ok") and v is not True]
        if name == "nccl":
            failed = [k for k, v in entry.items() if v is not True]
        worst = max(errors.items(), key=lambda item: item[1], default=("", 0.0))
        rows.append([name, f"{worst[0]} {worst[1]:.3g}" if worst[0] else "",
                     "pass" if not failed else "FAIL: " + ", ".join(failed)])
    return table(["check", "largest error", "result"], rows)


def layers(results):
    """The 8B layer's timings: one row per packing and kernel (with checkpointing, if any)."""
    rows = []
    for name, entry in results.items():
        if not name.startswith("layer_8b_") or name == "layer_8b_profile":
            continue
        if not isinstance(entry, dict):  # A stopped group's error.
            continue
        for label, timing in entry.items():
            if "error" in timing:
                rows.append([name[len("layer_8b_"):], label, timing["error"], "", "", ""])
                continue
            rows.append([name[len("layer_8b_"):], label,
                         f"{timing['median_seconds_per_step']:.3f}",
                         f"{timing['tokens_per_second']:,.0f}",
                         f"{timing['model_tokens_per_second_32_layers']:,.0f}",
                         f"{100 * timing['mfu']:.1f}%"])
    return table(["packing", "kernel", "s per step (median)", "tokens/s (one layer)",
                  "32 layers: tokens/s per GPU", "MFU"], rows)


def profile(results):
    """Where the fastest kernel's layer step spends its GPU time: by operator, then by kernel."""
    entry = results.get("layer_8b_profile")
    if not entry:
        return ""
    text = (f"GPU time of the layer through {entry['kernel']}, mixed lengths, "
            f"{entry['steps']} steps, {entry['device_seconds']:.3f} s in all:")
    for group in ("operators", "kernels"):
        rows = [[e["name"].replace("|", "/"), e["calls"], f"{1e3 * e['seconds_per_step']:.2f}",
                 f"{100 * e['share']:.1f}%"] for e in entry[group]]
        text += "\n\n" + table([group[:-1], "calls", "ms per step", "share"], rows)
    return text


def main():
    with open(sys.argv[1]) as f:
        results = json.load(f)
    print(f"{results.get('device')}, PyTorch {results.get('torch')}, CUDA {results.get('cuda')}"
          f"; allocator {results.get('allocator', 'as PyTorch sets it')}"
          f"; build {results.get('build_seconds', 0):.0f} s; failed: {results.get('failed')}\n")
    for name, error in results.items():
        if name.endswith("_error"):
            print(f"{name[:-len('_error')]} stopped: {error}\n")
    print(checks(results) + "\n")
    print(layers(results) + "\n")
    print(profile(results))


if __name__ == "__main__":
    main()

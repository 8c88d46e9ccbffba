#!/usr/bin/env python3
"""GPU checks of the trainer core, on a machine with a GPU and PyTorch (no Bazel needed).

Builds trainer/attention, trainer/model and the NCCL communicator against the installed
PyTorch's LibTorch (torch.utils.cpp_extension; Abseil and nlohmann-json from tools/gpu/deps,
made by tools/gpu/prepare.sh on a Debian machine), then checks:
  1. blockwise attention forward and backward against torch's scaled_dot_product_attention in
     bf16 (tolerances as TransformerEngine's tests: 2.5e-2 with as many kv heads as query
     heads, 3.5e-2 with grouped-query attention), and each kernel of the fused core likewise
     (per-document SDPA with K/V expanded, per-document SDPA with enable_gqa, one varlen flash
     call over the packed sequence, per-document cuDNN, the hybrid of the second and third;
     also with one document long enough for the hybrid to attend it alone), the all-gather
     scheme's local attention through the varlen flash kernel (two ranks simulated: each rank's
     zigzag chunks against every rank's keys, gathered with padding rows);
  2. Llama logits against transformers' LlamaForCausalLM on the same random weights, both ways:
     transformers' save_pretrained read by us, and ours read by from_pretrained (fp32: 1e-4
     relative; bf16 weights, and the trainer's bf16 autocast against torch.autocast: 3e-2), a
     packed sequence against its documents run one by one;
  3. the NCCL communicator with one rank, GPU tensors and CPU ones staged through the GPU;
  4. the Trainer's step on the GPU (one-rank NCCL group, activation checkpointing): three
     steps' losses and gradient norms against the same steps on the CPU, fp32 (1e-4 relative)
     and bf16 autocast with each fused kernel (3e-2), and the peak device memory reported;
  5. the throughput of one Llama-3-8B-shaped decoder layer, forward and backward, bf16, on
     65,536 packed tokens (one document; 64 of 1,024 tokens; documents of mixed lengths, new
     every step), with each fused kernel: tokens/s and MFU; for one document and mixed
     lengths also with the layer checkpointed, fully and selectively (model FLOPs: the
     recomputation is not counted, so MFU shows what checkpointing costs); where the fastest
     kernel spends the GPU's time on mixed lengths (torch.profiler, by operator and kernel); and
     mixed lengths with PyTorch's allocator the other way (expandable segments, which the
     trainer worker turns on, off);
  6. the whole training step (embedding, decoder layers, lm_head, blocked loss, AdamW; bf16,
     full checkpointing, sharded weights over one rank) of a Llama-3-8B-shaped model with as
     many layers as `prolongctl train --plan-memory` fits in 90% of the GPU, and with half as
     many, on 65,536 tokens of mixed lengths: tokens/s and MFU, tokens/s extrapolated to 32
     layers against ProLong's 3,095 per H100, and the measured peak against the plan.
Writes the results as JSON to --out and prints them; exits 1 if a check fails.
"""
import argparse
import copy
import glob
import json
import math
import os
import random
import sys
import tempfile
import time
import types

# As the trainer worker does (trainer/device_info.h), before anything touches the GPU.
os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
EXPANDABLE_SEGMENTS = "expandable_segments:True" in os.environ["PYTORCH_CUDA_ALLOC_CONF"]

import torch  # noqa: E402 (after the allocator's settings)
from torch.utils import cpp_extension  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPS = os.path.join(ROOT, "tools", "gpu", "deps")
# Dense bf16 peak of an H100 or H200 SXM, in FLOP/s.
PEAK_BF16 = 989.4e12
# The fused core's ways of calling the kernels (trainer/attention/fused_attention.h).
FUSED_KERNELS = ["per-document", "per-document-gqa", "varlen-flash", "per-document-cudnn",
                 "hybrid"]
CHECKS = ["attention", "gathered_keys", "ring_blocks", "llama", "nccl", "training", "throughput",
          "generation", "whole_model"]


def build(build_dir):
    os.makedirs(build_dir, exist_ok=True)
    libraries = sorted({os.path.basename(p)[3:-3] for p in glob.glob(DEPS + "/lib/libabsl_*.so")})
    sources = [
        "tools/gpu/bindings.cc",
        "trainer/attention/attention_memo.cc",
        "trainer/attention/blockwise_attention.cc",
        "trainer/attention/fused_attention.cc",
        "trainer/attention/fused_kernel.cc",
        "trainer/attention/hybrid_runs.cc",
        "trainer/attention/padded_length.cc",
        "trainer/attention/partial_attention.cc",
        "trainer/attention/varlen_attention.cc",
        "trainer/attention/varlen_plan.cc",
        "trainer/model/hf_checkpoint.cc",
        "trainer/model/llama.cc",
        "trainer/model/llama_config.cc",
        "trainer/model/safetensors.cc",
        "trainer/comm/internal/rendezvous.cc",
        "trainer/comm/nccl_communicator.cc",
        "trainer/train/blocked_cross_entropy.cc",
        "trainer/train/lr_schedule.cc",
        "trainer/train/memory_plan.cc",
        "trainer/train/trainer.cc",
        "trainer/train/trainer_options.cc",
        "trainer/parallel/activation_checkpointing.cc",
        "trainer/parallel/autocast_guard.cc",
        "trainer/parallel/context_parallel_attention.cc",
        "trainer/parallel/cp_scheme.cc",
        "trainer/parallel/data_parallel.cc",
        "trainer/parallel/fully_sharded.cc",
        "trainer/parallel/gathered_layouts.cc",
        "trainer/parallel/gradient_reduction.cc",
        "trainer/parallel/parallel_plan.cc",
        "trainer/parallel/parallelize.cc",
        "trainer/parallel/ring_attention.cc",
        "trainer/parallel/sharded_optimizer.cc",
        "trainer/parallel/ulysses_attention.cc",
        "evaluator/generate/generator.cc",
        "evaluator/generate/kv_cache.cc",
        "common/address.cc",
        "common/file.cc",
        "common/log.cc",
    ]
    return cpp_extension.load(
        name="prolong_gpu",
        sources=[os.path.join(ROOT, s) for s in sources],
        extra_include_paths=[ROOT, DEPS + "/include"],
        extra_cflags=["-O2", "-std=c++17", "-DPROLONG_CUDA=1", "-DUSE_C10D_NCCL"],
        # DT_RPATH rather than RUNPATH: it also finds the Abseil libraries' own dependencies.
        extra_ldflags=["-L" + DEPS + "/lib", "-Wl,--disable-new-dtags,-rpath," + DEPS + "/lib"]
        + ["-l" + name for name in libraries],
        with_cuda=True,
        build_directory=build_dir,
        verbose=False,
    )


def packed_layout(lengths, device):
    document = torch.cat([torch.full((n,), i, dtype=torch.int64) for i, n in enumerate(lengths)])
    position = torch.cat([torch.arange(n, dtype=torch.int64) for n in lengths])
    return document.to(device), position.to(device)


def sdpa_by_document(q, k, v, lengths, scale):
    """Reference: torch's fused attention, causal within each document, [T, H, D] in and out."""
    groups = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(groups, 1)
    v = v.repeat_interleave(groups, 1)
    out, begin = [], 0
    for n in lengths:
        piece = [t[begin:begin + n].transpose(0, 1)[None] for t in (q, k, v)]
        out.append(torch.nn.functional.scaled_dot_product_attention(
            *piece, is_causal=True, scale=scale)[0].transpose(0, 1))
        begin += n
    return torch.cat(out)


def relative_error(actual, expected):
    return ((actual.float() - expected.float()).abs().max() /
            expected.float().abs().max().clamp_min(1e-12)).item()


def close(actual, expected, tolerance):
    return torch.allclose(actual.float(), expected.float(), atol=tolerance, rtol=tolerance)


def record(entry, compared, tolerance):
    """Each (label, actual, expected)'s largest error, and whether it is within tolerance."""
    for label, actual, expected in compared:
        entry[label + "_max_abs_error"] = (actual.float() - expected.float()).abs().max().item()
        entry[label + "_ok"] = close(actual, expected, tolerance)


# Documents of the attention checks: short and long ones, one of 3 tokens.
ATTENTION_LENGTHS = [100, 400, 3, 521]
# The same and one document long enough to be attended on its own by the hybrid kernel (8,192
# tokens or more), with short documents on both sides.
HYBRID_ATTENTION_LENGTHS = ATTENTION_LENGTHS + [8200, 77]


def attention_cases(seed, lengths=ATTENTION_LENGTHS):
    """Random bf16 q, k, v and output gradient over `lengths`, as many kv heads as query heads
    and 4 times fewer, with the reference's output and gradients."""
    torch.manual_seed(seed)
    tokens = sum(lengths)
    for heads, kv_heads in [(8, 8), (8, 2)]:
        q = torch.randn(tokens, heads, 64, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(tokens, kv_heads, 64, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(tokens, kv_heads, 64, device="cuda", dtype=torch.bfloat16)
        dout = torch.randn(tokens, heads, 64, device="cuda", dtype=torch.bfloat16)
        scale = 64 ** -0.5
        ref_in = [t.clone().requires_grad_() for t in (q, k, v)]
        ref_out = sdpa_by_document(*ref_in, lengths, scale)
        ref_out.backward(dout)
        yield types.SimpleNamespace(
            name=f"{heads}q_{kv_heads}kv" + ("" if lengths == ATTENTION_LENGTHS else "_long"),
            tolerance=2.5e-2 if heads == kv_heads else 3.5e-2,
            q=q, k=k, v=v, dout=dout, scale=scale, ref_out=ref_out,
            ref_grads=[t.grad for t in ref_in])


def check_attention(ext, results):
    for lengths in (ATTENTION_LENGTHS, HYBRID_ATTENTION_LENGTHS):
        check_attention_of(ext, results, lengths)


def check_attention_of(ext, results, lengths):
    document, position = packed_layout(lengths, "cuda")
    for case in attention_cases(0, lengths):
        q, k, v, dout, scale = case.q, case.k, case.v, case.dout, case.scale
        out, lse = ext.attention_forward(q, k, v, document, position, scale)
        dq, dk, dv = ext.attention_backward(dout, q, k, v, out, lse, document, position, scale)
        # The same reference again, to tell a flaky kernel from a wrong gradient.
        again_in = [t.clone().requires_grad_() for t in (q, k, v)]
        sdpa_by_document(*again_in, lengths, scale).backward(dout)
        entry = {"tolerance": case.tolerance}
        compared = [("out", out, case.ref_out),
                    ("reference_again_dq", again_in[0].grad, case.ref_grads[0])]
        compared += [(f"d{x}", grad, case.ref_grads[i]) for i, (x, grad) in
                     enumerate(zip("qkv", (dq, dk, dv)))]
        for kernel in FUSED_KERNELS:
            try:
                fused_in = [t.clone().requires_grad_() for t in (q, k, v)]
                fused_out = ext.fused_attention(*fused_in, document, position, scale, kernel)
                fused_out.backward(dout)
            except Exception as error:  # One kernel's failure must not hide the others.
                entry[f"{kernel}_error"] = f"{type(error).__name__}: {error}"
                entry[f"{kernel}_ok"] = False
                continue
            compared += [(f"{kernel}_out", fused_out, case.ref_out)]
            compared += [(f"{kernel}_d{x}", fused_in[i].grad, case.ref_grads[i])
                         for i, x in enumerate("qkv")]
        record(entry, compared, case.tolerance)
        entry["lse_finite"] = bool(torch.isfinite(lse).all().item())
        results["attention_" + case.name] = entry


def check_gathered_keys_attention(ext, results):
    """The all-gather scheme's local attention (varlen flash over gathered keys), 2 ranks
    simulated: each rank's zigzag chunks against every rank's keys gathered rank by rank with
    padding rows, outputs and summed gradients against the one-process reference."""
    tokens = sum(ATTENTION_LENGTHS)
    document, position = packed_layout(ATTENTION_LENGTHS, "cuda")
    chunk = tokens // 4
    ranks = [torch.cat([torch.arange(r * chunk, (r + 1) * chunk),
                        torch.arange((3 - r) * chunk, (4 - r) * chunk)]).cuda() for r in range(2)]

    def gathered(t, fill):  # rank by rank, each padded by 3 rows
        return torch.cat([torch.cat([t[rows], torch.full((3,) + tuple(t.shape[1:]), fill,
                                                         dtype=t.dtype, device=t.device)])
                          for rows in ranks])

    k_document, k_position = gathered(document, -1), gathered(position, 0)
    for case in attention_cases(1):
        ours_in = [t.clone().requires_grad_() for t in (case.q, case.k, case.v)]
        all_k, all_v = gathered(ours_in[1], 0), gathered(ours_in[2], 0)
        out = torch.empty_like(case.q)
        total = 0
        entry = {"tolerance": case.tolerance, "varlen_calls_per_rank": []}
        for rows in ranks:
            entry["varlen_calls_per_rank"].append(ext.varlen_calls(
                document[rows], position[rows], k_document, k_position))
            rank_out = ext.gathered_keys_attention(ours_in[0][rows], all_k, all_v, document[rows],
                                                   position[rows], k_document, k_position,
                                                   case.scale)
            out[rows] = rank_out.detach()
            total = total + (rank_out.float() * case.dout[rows].float()).sum()
        total.backward()
        entry["planned_ok"] = all(calls > 0 for calls in entry["varlen_calls_per_rank"])
        record(entry, [("out", out, case.ref_out)] +
               [(f"d{x}", ours_in[i].grad, case.ref_grads[i]) for i, x in enumerate("qkv")],
               case.tolerance)
        results["gathered_keys_attention_" + case.name] = entry


def check_ring_blocks_attention(ext, results):
    """The ring scheme's local attention (varlen flash on each block, causal on a rank's own,
    non-causal on the others'), 2 and 4 ranks simulated: parts merged by log-sum-exp, each
    block's backward with the merged out and lse, against the one-process reference."""
    document, position = packed_layout(ATTENTION_LENGTHS, "cuda")
    for case in attention_cases(2):
        for ranks in (2, 4):
            out, dq, dk, dv, planned = ext.ring_blocks_attention(
                case.q, case.k, case.v, case.dout, document, position, case.scale, ranks)
            entry = {"tolerance": case.tolerance, "planned_ok": planned}
            record(entry, [("out", out, case.ref_out)] +
                   [(f"d{x}", grad, case.ref_grads[i]) for i, (x, grad) in
                    enumerate(zip("qkv", (dq, dk, dv)))], case.tolerance)
            results[f"ring_blocks_attention_{ranks}_ranks_{case.name}"] = entry


def check_llama(ext, results, work):
    try:
        import transformers
    except ImportError:
        results["llama"] = {"skipped": "transformers is not installed"}
        return
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=1000, hidden_size=256, intermediate_size=688, num_hidden_layers=2,
        num_attention_heads=8, num_key_value_heads=2, rope_theta=5e5, max_position_embeddings=4096,
        tie_word_embeddings=False, attn_implementation="eager")
    lengths = [37, 64, 5]
    ids = torch.randint(0, 1000, (sum(lengths),))
    document, position = packed_layout(lengths, "cpu")

    def theirs(model, dtype, autocast=False):
        # A copy: .to() would round the shared model's weights for the next reference.
        model = copy.deepcopy(model).to("cuda", dtype).eval()
        out, begin = [], 0
        with torch.no_grad(), torch.autocast("cuda", torch.bfloat16, enabled=autocast):
            for n in lengths:
                out.append(model(ids[begin:begin + n][None].cuda()).logits[0].float().cpu())
                begin += n
        return torch.cat(out)

    entry = {"transformers": transformers.__version__}
    hf_dir = os.path.join(work, "from_transformers")
    hf_model = transformers.LlamaForCausalLM(config)
    hf_model.save_pretrained(hf_dir, safe_serialization=True)
    expected = theirs(hf_model, torch.float32)
    for label, precision, fused, tolerance in [("fp32", "fp32", False, 1e-4),
                                               ("fp32_fused", "fp32", True, 1e-4),
                                               ("bf16", "bf16", True, 3e-2),
                                               ("bf16_autocast", "autocast", True, 3e-2)]:
        reference = (expected if precision == "fp32" else
                     theirs(hf_model, torch.bfloat16) if precision == "bf16" else
                     theirs(hf_model, torch.float32, autocast=True))
        ours = ext.llama_logits(hf_dir, ids, document, position, "cuda", precision, fused)
        error = relative_error(ours, reference)
        entry[f"theirs_to_ours_{label}_relative_error"] = error
        entry[f"theirs_to_ours_{label}_ok"] = error <= tolerance
    ours_dir = os.path.join(work, "from_prolong")
    ext.save_random_llama(os.path.join(hf_dir, "config.json"), ours_dir, 7)
    loaded = transformers.LlamaForCausalLM.from_pretrained(ours_dir, torch_dtype=torch.float32)
    error = relative_error(ext.llama_logits(ours_dir, ids, document, position, "cuda", "fp32", False),
                           theirs(loaded, torch.float32))
    entry["ours_to_theirs_fp32_relative_error"] = error
    entry["ours_to_theirs_fp32_ok"] = error <= 1e-4
    # Whether RMSNorm runs as PyTorch's fused kernel here (FusedRmsNormBackward0) or composite.
    entry["rms_norm_backward_node"] = {dtype: ext.rms_norm_backward_node(dtype)
                                       for dtype in ("fp32", "bf16")}
    results["llama"] = entry


def llama_config_file(work, name, hidden, intermediate, layers, heads, kv_heads, vocab, theta):
    """A Hugging Face config.json for a Llama of that shape, in `work`; its path."""
    path = os.path.join(work, name)
    with open(path, "w") as f:
        json.dump({"vocab_size": vocab, "hidden_size": hidden, "intermediate_size": intermediate,
                   "num_hidden_layers": layers, "num_attention_heads": heads,
                   "num_key_value_heads": kv_heads, "rms_norm_eps": 1e-5, "rope_theta": theta,
                   "max_position_embeddings": 131072, "tie_word_embeddings": False}, f)
    return path


def check_training(ext, results, work):
    """The Trainer's steps on the GPU against the same steps on the CPU."""
    model_dir = os.path.join(work, "train_model")
    config_path = llama_config_file(work, "train_config.json", hidden=256, intermediate=688,
                                    layers=2, heads=8, kv_heads=2, vocab=1000, theta=5e5)
    ext.save_random_llama(config_path, model_dir, 3)
    steps = 3
    expected = ext.train_steps(model_dir, "cpu", "fp32", "", steps)
    entry = {"cpu_fp32_losses": expected["losses"], "cpu_fp32_grad_norms": expected["grad_norms"]}
    runs = [("fp32_blockwise", "fp32", "", 1e-4), ("fp32_fused", "fp32", "per-document", 1e-4)]
    runs += [(f"autocast_{kernel}", "autocast", kernel, 3e-2) for kernel in FUSED_KERNELS]
    for label, precision, kernel, tolerance in runs:
        try:
            got = ext.train_steps(model_dir, "cuda", precision, kernel, steps)
        except Exception as error:  # One run's failure must not hide the others.
            entry[f"{label}_error"] = f"{type(error).__name__}: {error}"
            entry[f"{label}_ok"] = False
            continue
        errors = [abs(a - b) / abs(b) for key in ("losses", "grad_norms")
                  for a, b in zip(got[key], expected[key])]
        entry[f"{label}_losses"] = got["losses"]
        entry[f"{label}_max_relative_error"] = max(errors)
        entry[f"{label}_peak_device_bytes"] = got["peak_device_bytes"]
        entry[f"{label}_ok"] = max(errors) <= tolerance and got["peak_device_bytes"] > 0
    results["training"] = entry


def mixed_lengths(rng, tokens):
    """Documents of log-uniform lengths in [64, tokens] packed into `tokens` tokens."""
    lengths = []
    while sum(lengths) < tokens:
        lengths.append(min(int(math.exp(rng.uniform(math.log(64), math.log(tokens)))),
                           tokens - sum(lengths)))
    return lengths


def check_layer_throughput(ext, results, work, save):
    """Times the 8B layer; `save` writes what is known so far (a time limit may stop the run)."""
    path = llama_config_file(work, "llama3_8b_config.json", hidden=4096, intermediate=14336,
                             layers=32, heads=32, kv_heads=8, vocab=128256, theta=8e6)
    hidden, ffn, kv = 4096, 14336, 8 * 128
    layer_parameters = 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * ffn + 2 * hidden
    tokens = 65536
    rng = random.Random(0)

    def mixed():
        return mixed_lengths(rng, tokens)

    # The same steps for every kernel and checkpointing mode of a packing.
    packings = {"one_document_of_65536": [[tokens]] * 7,
                "64_documents_of_1024": [[1024] * 64] * 7,
                # New lengths every step, as in training: kernels that plan per shape pay here.
                "mixed_lengths_new_each_step": [mixed() for _ in range(7)]}
    # The kernels without checkpointing first, the figure that matters most; then where the
    # fastest of them spends its time; mixed lengths with PyTorch's allocator the other way
    # (expandable segments off where the run has them on); the costs of checkpointing last,
    # the Trainer's default first.
    runs = [(packing, "none") for packing in packings] + [("profile", None)]
    runs += [("mixed_lengths_new_each_step", "other_allocator")]
    runs += [(packing, mode) for mode in ("full", "selective")
             for packing in ("one_document_of_65536", "mixed_lengths_new_each_step")]
    for packing, mode in runs:
        if packing == "profile":
            try:
                profile_layer(ext, results, path, packings["mixed_lengths_new_each_step"][:3])
            except Exception as error:  # The profiler's own failure must not stop the timings.
                results["layer_8b_profile_error"] = f"{type(error).__name__}: {error}"
            save()
            continue
        if mode == "other_allocator":
            # Expandable segments grow in place instead of leaving blocks of one size:
            # documents of new lengths every step allocate tensors of new sizes.
            try:
                set_expandable_segments(not EXPANDABLE_SEGMENTS)
            except Exception as error:  # No such setting in this PyTorch.
                results["layer_8b_other_allocator_error"] = f"{type(error).__name__}: {error}"
                continue
        entry = results.setdefault(f"layer_8b_{packing}", {})
        steps = packings[packing]
        for kernel in FUSED_KERNELS:
            other = f"{kernel}+expandable_segments_{'off' if EXPANDABLE_SEGMENTS else 'on'}"
            label = {"none": kernel, "other_allocator": other}.get(
                mode, f"{kernel}+{mode}_checkpointing")
            checkpointing = "none" if mode == "other_allocator" else mode
            try:
                # After 2 warm-up steps.
                seconds = ext.layer_seconds(path, steps, kernel, checkpointing)[2:]
            except Exception as error:  # Out of memory, or no such kernel in this PyTorch.
                entry[label] = {"error": f"{type(error).__name__}: {error}"}
                torch.cuda.empty_cache()
                continue
            # 6 FLOPs per parameter and token (forward + backward); causal attention: QK^T and
            # PV, 2 * hidden FLOPs each per (query, key) pair, L^2 / 2 pairs per document of L
            # tokens, times 3 for forward + backward.
            flops = [tokens * 6 * layer_parameters +
                     3 * 2 * 2 * hidden * sum(n * n / 2 for n in step) for step in steps[2:]]
            median = sorted(seconds)[len(seconds) // 2]
            entry[label] = {
                "seconds_per_step": seconds,
                "median_seconds_per_step": median,
                "tokens_per_second": tokens / median,
                "model_tokens_per_second_32_layers": tokens / median / 32,
                "tflops": sum(flops) / sum(seconds) / 1e12,
                "mfu": sum(flops) / sum(seconds) / PEAK_BF16,
            }
        if mode == "other_allocator":
            set_expandable_segments(EXPANDABLE_SEGMENTS)
        save()


def check_whole_model(ext, results, work, save):
    """The whole training step of an 8B-shaped model with as many layers as fit this GPU."""
    path = llama_config_file(work, "llama3_8b_whole_config.json", hidden=4096, intermediate=14336,
                             layers=32, heads=32, kv_heads=8, vocab=128256, theta=8e6)
    hidden, ffn, kv, vocab = 4096, 14336, 8 * 128, 128256
    layer_parameters = 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * ffn + 2 * hidden
    tokens = 65536
    capacity = torch.cuda.get_device_properties(0).total_memory
    # The most layers (even, so that half of them is a second point) --plan-memory fits in 90%.
    layers = max([n for n in range(2, 33, 2)
                  if ext.planned_peak_bytes(path, n, tokens) <= 0.9 * capacity] or [0])
    entry = results.setdefault("whole_model_8b_shaped", {"layers_that_fit": layers})
    if layers == 0:
        entry["error"] = "no even number of layers fits by --plan-memory"
        return
    rng = random.Random(1)
    steps = [mixed_lengths(rng, tokens) for _ in range(6)]
    # Two depths: the difference is the layers' time, the rest embedding, lm_head, loss and AdamW.
    timed = {}
    for depth in (layers, layers // 2):
        torch.cuda.empty_cache()
        try:
            run = ext.whole_model_seconds(path, depth, steps)
        except Exception as error:
            entry[f"layers_{depth}_error"] = f"{type(error).__name__}: {error}"
            save()
            return
        seconds = run["seconds_per_step"][2:]  # after 2 warm-up steps
        median = sorted(seconds)[len(seconds) // 2]
        parameters = depth * layer_parameters + vocab * hidden + hidden  # lm_head, final norm
        flops = [tokens * 6 * parameters +
                 depth * 3 * 2 * 2 * hidden * sum(n * n / 2 for n in step) for step in steps[2:]]
        planned = ext.planned_peak_bytes(path, depth, tokens)
        timed[depth] = median
        entry[f"layers_{depth}"] = {
            "seconds_per_step": seconds,
            "tokens_per_second": tokens / median,
            "mfu": sum(flops) / sum(seconds) / PEAK_BF16,
            "peak_device_bytes": run["peak_device_bytes"],
            "planned_peak_bytes": planned,
            "planned_over_measured": planned / run["peak_device_bytes"],
            "plan_within_10_percent_ok": abs(planned / run["peak_device_bytes"] - 1) <= 0.1,
        }
        save()
    per_layer = (timed[layers] - timed[layers // 2]) / (layers - layers // 2)
    rest = timed[layers] - layers * per_layer
    entry["seconds_per_layer"] = per_layer
    entry["seconds_outside_layers"] = rest
    entry["tokens_per_second_32_layers"] = tokens / (rest + 32 * per_layer)
    # ProLong's 8B: 3,095 tokens/s per H100 (its paper).
    entry["over_prolong_3095"] = entry["tokens_per_second_32_layers"] / 3095
    entry["mfu_45_percent_ok"] = entry[f"layers_{layers}"]["mfu"] >= 0.45


def hf_greedy(model, prompt, max_new_tokens):
    """transformers' generate, greedy, on one prompt: the new tokens, EOS left out; seconds."""
    ids = torch.tensor([prompt], device=model.device)
    torch.cuda.synchronize()
    start = time.time()
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_new_tokens, min_new_tokens=0,
                             pad_token_id=0)
    torch.cuda.synchronize()
    seconds = time.time() - start
    new = out[0, len(prompt):].tolist()
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    for i, token in enumerate(new):
        if token in eos:
            new = new[:i]
            break
    return new, seconds


def check_generation(ext, results, work):
    """Greedy tokens against transformers' generate on the same random weights (fp32 on the CPU
    and the GPU: equal; bf16: the length of the common prefix), then prefill and decode tokens/s
    of an 8B-shaped model with 2 layers at 32K and 128K tokens of context against generate."""
    try:
        import transformers
    except ImportError:
        results["generation"] = {"skipped": "transformers is not installed"}
        return
    entry = {}
    torch.manual_seed(1)
    small = transformers.LlamaConfig(
        vocab_size=1000, hidden_size=256, intermediate_size=688, num_hidden_layers=2,
        num_attention_heads=8, num_key_value_heads=2, rope_theta=5e5,
        max_position_embeddings=8192, tie_word_embeddings=False, attn_implementation="sdpa")
    small_dir = os.path.join(work, "generation_small")
    transformers.LlamaForCausalLM(small).save_pretrained(small_dir, safe_serialization=True)
    prompts = [torch.randint(0, 1000, (n,)).tolist() for n in (17, 300, 1500)]
    for dtype, torch_dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        hf = transformers.LlamaForCausalLM.from_pretrained(small_dir, torch_dtype=torch_dtype)
        hf = hf.to("cuda").eval()
        ours = ext.generate_greedy(small_dir, prompts, 32, "cuda", dtype, 512)
        common = []
        for prompt, mine in zip(prompts, ours["tokens"]):
            theirs, _ = hf_greedy(hf, prompt, 32)
            same = 0
            while same < min(len(mine), len(theirs)) and mine[same] == theirs[same]:
                same += 1
            common.append(same if (mine != theirs) else len(mine))
            if dtype == "fp32":
                entry.setdefault("fp32_mismatches", []).append(None if mine == theirs else same)
        entry[f"{dtype}_common_prefix"] = common
        del hf
    entry["fp32_ok"] = all(m is None for m in entry["fp32_mismatches"])

    shaped = llama_config_file(work, "generation_8b_2layers.json", 4096, 14336, 2, 32, 8, 128256,
                               5e5)
    shaped_dir = os.path.join(work, "generation_8b")
    ext.save_random_llama(shaped, shaped_dir, 3)
    hf = transformers.LlamaForCausalLM.from_pretrained(
        shaped_dir, torch_dtype=torch.bfloat16, attn_implementation="sdpa").to("cuda").eval()
    for context in (32768, 131072):
        prompt = torch.randint(0, 128000, (context,)).tolist()
        new_tokens = 32
        try:
            ours = ext.generate_greedy(shaped_dir, [prompt], new_tokens, "cuda", "bf16", 8192)
            entry[f"ours_prefill_tokens_per_second_{context}"] = (
                ours["prefill_tokens"] / ours["prefill_seconds"])
            entry[f"ours_decode_tokens_per_second_{context}"] = (
                ours["decode_tokens"] / max(ours["decode_seconds"], 1e-9))
        except Exception as error:  # one length failing must not hide the other
            entry[f"ours_{context}_error"] = f"{type(error).__name__}: {error}"
        try:
            _, one = hf_greedy(hf, prompt, 1)
            _, many = hf_greedy(hf, prompt, new_tokens)
            entry[f"hf_prefill_tokens_per_second_{context}"] = context / one
            entry[f"hf_decode_tokens_per_second_{context}"] = (new_tokens - 1) / max(many - one, 1e-9)
        except Exception as error:
            entry[f"hf_{context}_error"] = f"{type(error).__name__}: {error}"
        torch.cuda.empty_cache()
    results["generation"] = entry


def set_expandable_segments(on):
    torch.cuda.empty_cache()
    torch.cuda.memory._set_allocator_settings(f"expandable_segments:{on}")


def profile_layer(ext, results, path, steps):
    """The GPU time of the 8B layer's fastest kernel on mixed lengths, by operator and kernel."""
    timings = results["layer_8b_mixed_lengths_new_each_step"]
    kernel = min((k for k in timings if "error" not in timings[k]),
                 key=lambda k: timings[k]["median_seconds_per_step"])
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=activities) as profile:
        ext.layer_seconds(path, steps, kernel, "none")

    def device_time(event):
        return getattr(event, "self_device_time_total", 0)

    # Operators (CPU events) own the kernels they launch; kernels are the GPU events.
    gpu = torch.autograd.DeviceType.CUDA
    groups = {"operators": [e for e in profile.key_averages() if e.device_type != gpu],
              "kernels": [e for e in profile.key_averages() if e.device_type == gpu]}
    total = sum(device_time(e) for e in groups["kernels"])
    entry = {"kernel": kernel, "steps": len(steps), "device_seconds": total / 1e6}
    for group, events in groups.items():
        events = sorted((e for e in events if device_time(e) > 0), key=device_time, reverse=True)
        entry[group] = [{"name": e.key.removeprefix("void ")[:120], "calls": e.count,
                         "seconds_per_step": device_time(e) / 1e6 / len(steps),
                         "share": device_time(e) / total} for e in events[:20]]
    results["layer_8b_profile"] = entry


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_check.json")
    parser.add_argument("--only", help="comma-separated checks to run (default: all): " +
                        ",".join(CHECKS))
    parser.add_argument("--kernels", help="comma-separated fused kernels to check and time "
                        "(default: all): " + ",".join(FUSED_KERNELS))
    args = parser.parse_args()
    unknown = set(args.only.split(",") if args.only else []) - set(CHECKS)
    unknown |= set(args.kernels.split(",") if args.kernels else []) - set(FUSED_KERNELS)
    if unknown:
        parser.error("unknown checks or kernels: " + ", ".join(sorted(unknown)))
    if args.kernels:
        FUSED_KERNELS[:] = args.kernels.split(",")
    results = {"torch": torch.__version__, "cuda": torch.version.cuda,
               "device": torch.cuda.get_device_name(0),
               "allocator": os.environ["PYTORCH_CUDA_ALLOC_CONF"]}
    work = tempfile.mkdtemp()
    start = time.time()
    ext = build(os.path.join(work, "build"))
    results["build_seconds"] = time.time() - start
    ok = True

    def save():
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)

    checks = {"attention": lambda: check_attention(ext, results),
              "gathered_keys": lambda: check_gathered_keys_attention(ext, results),
              "ring_blocks": lambda: check_ring_blocks_attention(ext, results),
              "llama": lambda: check_llama(ext, results, work),
              "nccl": lambda: results.__setitem__("nccl", dict(ext.nccl_check())),
              "training": lambda: check_training(ext, results, work),
              "throughput": lambda: check_layer_throughput(ext, results, work, save),
              "generation": lambda: check_generation(ext, results, work),
              "whole_model": lambda: check_whole_model(ext, results, work, save)}
    assert list(checks) == CHECKS
    for name in args.only.split(",") if args.only else CHECKS:
        try:
            checks[name]()
        except Exception as error:  # Report and go on: one failure must not hide the others.
            results[name + "_error"] = f"{type(error).__name__}: {error}"
            ok = False
        save()
    failed = [f"{key}.{k}" for key, value in results.items() if isinstance(value, dict)
              for k, v in value.items() if k.endswith("_ok") and v is False]
    if isinstance(results.get("nccl"), dict):
        failed += [f"nccl.{k}" for k, v in results["nccl"].items() if v is not True]
    results["failed"] = failed
    save()
    print(json.dumps(results, indent=2))
    return 0 if ok and not failed else 1


if __name__ == "__main__":
    sys.exit(main())

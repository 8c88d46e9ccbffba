#!/usr/bin/env python3
"""Reference Llama logits and gradients for the C++ model's tests.

Written from the formulas of Hugging Face's modeling_llama, not from the C++ code: RMSNorm,
RoPE with rotate_half, repeat_kv for grouped-query attention, a causal softmax over each
sequence on its own, SwiGLU, Llama 3.1 RoPE scaling. Everything runs in float64. safetensors
files are read and written by a parser of its own (struct + json), so the C++ reader and
writer meet a second implementation of the format as well.

usage: llama_reference.py MODEL_DIR INPUTS_JSON OUTPUT_SAFETENSORS

MODEL_DIR: config.json with model.safetensors or model.safetensors.index.json and its shards.
INPUTS_JSON: {"sequences": [{"tokens": [...], "positions": [...]}, ...], "targets": [...]}
  Each sequence runs alone, causally masked, with the given RoPE positions. "targets"
  (optional) has one label per token of all sequences concatenated; the mean cross-entropy of
  the concatenated logits is then backpropagated to the weights.
OUTPUT: "logits" [tokens, vocab]; with targets also "loss" [] and "grad.NAME" per weight. F64.
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

NUMPY_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_length].decode("utf-8"))
    base = 8 + header_length
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[base + begin : base + end]
        if info["dtype"] == "BF16":
            # bfloat16 is the upper half of a float32.
            array = (np.frombuffer(raw, dtype="<u2").astype("<u4") << 16).view("<f4")
        else:
            array = np.frombuffer(raw, dtype=NUMPY_DTYPES[info["dtype"]])
        tensors[name] = torch.from_numpy(array.reshape(info["shape"]).copy())
    return tensors


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name].detach().numpy().astype("<f8"))
        blob = array.tobytes()
        header[name] = {
            "dtype": "F64",
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_weights(model_dir):
    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    if not os.path.exists(index_path):
        return read_safetensors(os.path.join(model_dir, "model.safetensors"))
    with open(index_path) as f:
        weight_map = json.load(f)["weight_map"]
    weights = {}
    for shard in sorted(set(weight_map.values())):
        weights.update(read_safetensors(os.path.join(model_dir, shard)))
    assert set(weights) == set(weight_map), "index and shards disagree"
    return weights


def head_dim(config):
    return config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]


def inverse_frequencies(config):
    dim = head_dim(config)
    theta = config.get("rope_theta", 10000.0)
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    scaling = config.get("rope_scaling")
    if not scaling:
        return inv_freq
    assert scaling.get("rope_type", scaling.get("type")) == "llama3", scaling
    factor = scaling["factor"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    context = scaling["original_max_position_embeddings"]
    low_freq_wavelen, high_freq_wavelen = context / low, context / high
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (context / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_freq_wavelen) & ~(wavelen > low_freq_wavelen)
    return torch.where(medium, smoothed, scaled)


def rms_norm(x, weight, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def repeat_kv(x, n_rep):
    # [kv_heads, T, D] -> [kv_heads * n_rep, T, D]; kv head j serves query heads j*n_rep...
    kv_heads, length, dim = x.shape
    return x[:, None].expand(kv_heads, n_rep, length, dim).reshape(kv_heads * n_rep, length, dim)


def forward(config, w, tokens, positions):
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    dim = head_dim(config)
    eps = config.get("rms_norm_eps", 1e-6)
    length = len(tokens)

    angles = torch.tensor(positions, dtype=torch.float64)[:, None] * inverse_frequencies(config)
    emb = torch.cat((angles, angles), dim=-1)
    cos, sin = emb.cos(), emb.sin()  # [T, D], broadcast over heads
    causal = torch.full((length, length), float("-inf"), dtype=torch.float64).triu(1)

    x = w["model.embed_tokens.weight"][torch.tensor(tokens)]
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(length, heads, dim).transpose(0, 1)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(length, kv_heads, dim).transpose(0, 1)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(length, kv_heads, dim).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k, v = repeat_kv(k, heads // kv_heads), repeat_kv(v, heads // kv_heads)
        scores = q @ k.transpose(1, 2) / math.sqrt(dim) + causal
        out = (torch.softmax(scores, dim=-1) @ v).transpose(0, 1).reshape(length, heads * dim)
        x = x + out @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = F.silu(h @ w[p + "mlp.gate_proj.weight"].T)
        x = x + (gate * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    if config.get("tie_word_embeddings", False):
        assert "lm_head.weight" not in w, "a tied checkpoint has no lm_head.weight"
        lm_head = w["model.embed_tokens.weight"]
    else:
        lm_head = w["lm_head.weight"]
    return x @ lm_head.T


def main():
    model_dir, inputs_path, output_path = sys.argv[1:4]
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    with open(inputs_path) as f:
        inputs = json.load(f)
    weights = {
        name: t.to(torch.float64).requires_grad_(True) for name, t in read_weights(model_dir).items()
    }
    logits = torch.cat(
        [forward(config, weights, s["tokens"], s["positions"]) for s in inputs["sequences"]]
    )
    outputs = {"logits": logits}
    if "targets" in inputs:
        loss = F.cross_entropy(logits, torch.tensor(inputs["targets"]))
        loss.backward()
        outputs["loss"] = loss
        for name, t in weights.items():
            outputs["grad." + name] = t.grad
    write_safetensors(output_path, outputs)


if __name__ == "__main__":
    main()

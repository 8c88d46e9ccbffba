#!/usr/bin/env python3
"""The baseline for tools/bench/train_step.sh: the benchmark's model and training step written
in PyTorch Python the way a user would, with torch's own modules: a Llama (4 layers of width
256, 4 heads of 64, 2 kv heads, SwiGLU 688, vocabulary 32000), document-masked causal attention
through a [T, T] mask, full logits and cross-entropy, AdamW (decay on matrices only) with
gradient clipping at 1.0. Prints one JSON line like train_step_benchmark --mode=step."""
import argparse
import json
import time

import torch
import torch.nn.functional as F

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, LAYERS, VOCAB = 256, 4, 2, 64, 688, 4, 32000


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.q = torch.nn.Linear(HIDDEN, HEADS * HEAD_DIM, bias=False)
        self.k = torch.nn.Linear(HIDDEN, KV_HEADS * HEAD_DIM, bias=False)
        self.v = torch.nn.Linear(HIDDEN, KV_HEADS * HEAD_DIM, bias=False)
        self.o = torch.nn.Linear(HEADS * HEAD_DIM, HIDDEN, bias=False)
        self.gate = torch.nn.Linear(HIDDEN, FFN, bias=False)
        self.up = torch.nn.Linear(HIDDEN, FFN, bias=False)
        self.down = torch.nn.Linear(FFN, HIDDEN, bias=False)
        self.norm1, self.norm2 = RMSNorm(HIDDEN), RMSNorm(HIDDEN)

    def forward(self, x, cos, sin, mask):
        t = x.shape[0]
        h = self.norm1(x)
        q = self.q(h).view(t, HEADS, HEAD_DIM).transpose(0, 1)
        k = self.k(h).view(t, KV_HEADS, HEAD_DIM).transpose(0, 1)
        v = self.v(h).view(t, KV_HEADS, HEAD_DIM).transpose(0, 1)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(HEADS // KV_HEADS, 0)
        v = v.repeat_interleave(HEADS // KV_HEADS, 0)
        scores = (q @ k.transpose(1, 2)) * HEAD_DIM ** -0.5
        attention = scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v
        x = x + self.o(attention.transpose(0, 1).reshape(t, HEADS * HEAD_DIM))
        h = self.norm2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, HIDDEN)
        self.layers = torch.nn.ModuleList(Layer() for _ in range(LAYERS))
        self.norm = RMSNorm(HIDDEN)
        self.lm_head = torch.nn.Linear(HIDDEN, VOCAB, bias=False)

    def forward(self, ids, positions, documents):
        inv_freq = 1.0 / (500000 ** (torch.arange(0, HEAD_DIM, 2).float() / HEAD_DIM))
        angles = positions[:, None].float() * inv_freq[None]
        angles = torch.cat((angles, angles), -1)
        cos, sin = angles.cos()[None], angles.sin()[None]
        mask = (documents[:, None] == documents[None, :]) & (positions[None, :] <= positions[:, None])
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.norm(x))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--documents", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(1)
    model = Llama()
    matrices = [p for p in model.parameters() if p.dim() == 2]
    vectors = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": matrices, "weight_decay": 0.1},
                                   {"params": vectors, "weight_decay": 0.0}],
                                  lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    t, d = args.tokens, args.documents
    ids = torch.randint(0, VOCAB, (t,))
    targets = torch.roll(ids, -1)
    bounds = [i * t // d for i in range(d + 1)]
    documents = torch.cat([torch.full((bounds[i + 1] - bounds[i],), i) for i in range(d)])
    positions = torch.cat([torch.arange(bounds[i + 1] - bounds[i]) for i in range(d)])
    targets[torch.tensor(bounds[1:]) - 1] = -100

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(ids, positions, documents), targets, ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    step()  # Warm-up.
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = time.perf_counter() - start
    print(json.dumps({"tokens_per_second": t * args.steps / seconds,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()

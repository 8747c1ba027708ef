#!/usr/bin/env python3
"""Writes the loop's shape sets, deterministically (fixed seed): train.csv, test.csv (unseen
shapes: none of them is in train.csv) and energy.csv (a few shapes for the energy counter).

Prefill-like CUDA problems: batch 1..16, sequence 128..16k (self-attention, seqlen_q = seqlen_k),
head_dim 64/128/256, GQA ratios 1/2/4/8, causal and not, bf16 and fp16. Tokens (batch x seqlen)
stay <= 16k and the work per call <= ~2.2 TFLOP, so that one call takes at most a few
milliseconds on an H100 and the whole loop fits its time budget. Run from anywhere:
    python3 bench/gpu/loop/make_shapes.py
"""
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = "batch,heads_q,heads_kv,seqlen_q,seqlen_k,head_dim,dtype,causal,device"
MAX_TOKENS = 16384
MAX_FLOP = 2.2e12


def flop(b, h, l, d, causal):
    f = 4.0 * b * h * l * l * d
    return f / 2 if causal else f


def sample(rng, lengths, n, taken):
    out = []
    tries = 0
    while len(out) < n and tries < 100000:
        tries += 1
        l = rng.choice(lengths)
        d = rng.choice([64, 128, 256])
        # heads so that heads x head_dim is 1024..4096 (model widths of 1k..4k per layer)
        h = rng.choice([x for x in (8, 12, 16, 24, 32) if 512 <= x * d <= 4096] or [8])
        ratio = rng.choice([r for r in (1, 2, 4, 8) if h % r == 0])
        bmax = max(1, min(16, MAX_TOKENS // l))
        b = rng.choice([x for x in (1, 2, 3, 4, 6, 8, 12, 16) if x <= bmax])
        causal = rng.choice([0, 1])
        dtype = rng.choice(["bf16", "fp16"])
        if flop(b, h, l, d, causal) > MAX_FLOP:
            continue
        key = (b, h, h // ratio, l, d, dtype, causal)
        if key in taken:
            continue
        taken.add(key)
        out.append(key)
    return out


def write(name, shapes):
    with open(os.path.join(HERE, name), "w") as f:
        f.write(HEADER + "\n")
        for b, h, hkv, l, d, dtype, causal in shapes:
            f.write(f"{b},{h},{hkv},{l},{l},{d},{dtype},{causal},cuda\n")


def main():
    rng = random.Random(20261125)
    taken = set()
    # Train: powers of two and a few in between, 128..16k.
    train_lengths = [128, 256, 512, 1024, 2048, 4096, 8192, 16384, 640, 2560, 10240]
    train = sample(rng, train_lengths, 80, taken)
    # Test: lengths the training set never saw, plus L = 1024 with other batch/head/dim mixes
    # (the routing-overhead row of the results is read at L = 1024).
    test_lengths = [192, 384, 768, 1536, 3072, 6144, 12288, 1024]
    test = sample(rng, test_lengths, 38, taken)
    # Two fixed L = 1024 shapes for the overhead figure, if the sampler did not already add them.
    for key in [(4, 16, 4, 1024, 128, "bf16", 1), (2, 32, 8, 1024, 64, "fp16", 0)]:
        if key not in taken:
            taken.add(key)
            test.append(key)
    # Energy: one length per regime, D = 128, bf16, 16 query heads, both causal settings.
    energy = [(16, 16, 4, 512, 128, "bf16", 0), (4, 16, 4, 2048, 128, "bf16", 1),
              (2, 16, 16, 4096, 128, "bf16", 0), (1, 16, 4, 8192, 128, "bf16", 1),
              (8, 32, 8, 1024, 64, "bf16", 0), (2, 8, 8, 4096, 256, "bf16", 1)]
    write("train.csv", train)
    write("test.csv", test)
    write("energy.csv", energy)
    total = sum(flop(b, h, l, d, c) for b, h, _, l, d, _, c in train + test)
    print(f"train {len(train)}, test {len(test)}, energy {len(energy)} shapes; "
          f"{total / 1e12:.1f} TFLOP per pass over train + test")


if __name__ == "__main__":
    main()

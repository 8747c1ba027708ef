#!/usr/bin/env python3
"""Writes bench/router/train_decode_shapes.csv: short-query (decode-like) training shapes, sampled
densely because that is where the best CPU backend flips (bench/NOTES.md, router quality).
Deterministic (fixed seed); never emits a shape of test_shapes.csv."""
import csv
import math
import os
import random

here = os.path.dirname(os.path.abspath(__file__))
test = {tuple(r) for r in csv.reader(open(os.path.join(here, "test_shapes.csv")))}
rng = random.Random(20261125)
rows, seen = [], set()
while len(rows) < 160:
    heads = rng.choice([4, 8, 16])
    group = rng.choice([g for g in (1, 2, 4) if heads % g == 0])
    lq = rng.choice([1, 1, 1, 2, 4, 4, 8, 16, 24, 32])
    lk = max(lq, int(round(math.exp(rng.uniform(math.log(64), math.log(4096))))))
    row = (str(rng.choice([1, 1, 2, 4])), str(heads), str(heads // group), str(lq), str(lk),
           str(rng.choice([32, 64, 96, 128])), rng.choice(["fp32", "fp32", "bf16", "fp16"]),
           str(rng.choice([0, 1])))
    if row in test or row in seen:
        continue
    seen.add(row)
    rows.append(row)
with open(os.path.join(here, "train_decode_shapes.csv"), "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["batch", "heads_q", "heads_kv", "seqlen_q", "seqlen_k", "head_dim", "dtype", "causal"])
    w.writerows(rows)
print(f"wrote {len(rows)} shapes")

#!/usr/bin/env python3
"""Scores the router's split-or-not verdicts against measured times.

crossover.py BENCH.md ROUTES.txt
BENCH.md: pfa_ring_bench's table (one GPU ms and ring ms per causal flag and length).
ROUTES.txt: lines "causal L {pfa-tune --json route ... --split-over N output}".
Prints a markdown table and the share of right verdicts, and the time of the router's choices
against the best choice (1.00 = always right).
"""
import json
import sys


def measured(path):
    rows = {}
    for line in open(path):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 9 or cells[0] not in ("yes", "no"):
            continue
        rows[(cells[0] == "yes", int(cells[1]))] = (float(cells[2]), float(cells[4]))
    return rows


def main():
    times = measured(sys.argv[1])
    print("| causal | L | one GPU ms | ring ms | measured speed-up | router says | predicted speed-up | right |")
    print("|---|---|---|---|---|---|---|---|")
    right = total = 0
    chosen_time = best_time = 0.0
    for line in open(sys.argv[2]):
        parts = line.split(" ", 2)
        if len(parts) < 3:
            continue
        causal, length = parts[0] == "1", int(parts[1])
        try:
            split = json.loads(parts[2])["split"]
        except (ValueError, KeyError):
            print(f"| {'yes' if causal else 'no'} | {length} | route failed: {parts[2].strip()[:80]} |")
            continue
        if (causal, length) not in times:
            continue
        one, ring = times[(causal, length)]
        says_split = split["verdict"] == "split"
        p1, p2 = split["one_device"]["predicted_cost"], split["split"]["predicted_cost"]
        predicted = f"{p1 / p2:.2f}x" if p1 and p2 else "-"
        ok = says_split == (ring < one)
        right += ok
        total += 1
        chosen_time += ring if says_split else one
        best_time += min(one, ring)
        print(f"| {'yes' if causal else 'no'} | {length} | {one:.3f} | {ring:.3f} | {one / ring:.2f}x | "
              f"{'split' if says_split else 'one GPU'} | {predicted} | {'yes' if ok else 'NO'} |")
    if total:
        print(f"\n{right} of {total} verdicts right; the router's choices take "
              f"{chosen_time / best_time:.3f}x the time of the best choices (1.000 = always right).")


if __name__ == "__main__":
    main()

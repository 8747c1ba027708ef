#!/usr/bin/env bash
# Which instructions the warps wait on: Nsight Compute's per-instruction (SASS) stall sampling
# for our sm_90a kernel and for cuDNN's on the same cell, reduced to the opcode mix and the
# instructions with the most stall samples. Run from the repository root after
# `source .devdeps/gpu-env.sh` and a build with pfa_fa3_bench in $BUILD/bin:
#   bench/gpu/ncu_source.sh [D L causal variant]      (default: 128 512 0 1)
# Writes $OUT/ncu_source_<cell>.txt (the reduction) and $OUT/ncu_source_<cell>_{ours,cudnn}.csv.gz
# (the raw pages).
set -u
OUT=${OUT:-/tmp/fa3-out}
BUILD=${BUILD:-/tmp/build}
mkdir -p "$OUT"
D=${1:-128} L=${2:-512} C=${3:-0} V=${4:-1}
cell=d${D}_l${L}_c${C}
R="$OUT/ncu_source_$cell.txt"
echo "# D=$D L=$L causal=$C variant=$V (bf16)" > "$R"
sections="--section SourceCounters --section WarpStateStats --section LaunchStats"
timeout 150 ncu $sections -k regex:fa3_fwd_kernel --launch-skip 2 -c 1 -f -o /tmp/src_${cell}_ours \
  "$BUILD/bin/pfa_fa3_bench" --single "$D" "$L" "$C" "$V" > /tmp/src_${cell}_ours.log 2>&1
echo "ncu ours rc=$?" >> "$R"
# cuDNN's kernel through the benchmark on the same cell (its third launch: bf16, non-causal).
timeout 200 ncu $sections -k regex:"sdpa.*sm90|sm90.*fprop" --launch-skip 2 -c 1 -f -o /tmp/src_${cell}_cudnn \
  "$BUILD/bin/pfa_fa3_bench" --dims "$D" --lens "$L" --repeats 1 > /tmp/src_${cell}_cudnn.log 2>&1
echo "ncu cudnn rc=$?" >> "$R"
for who in ours cudnn; do
  [ -f /tmp/src_${cell}_$who.ncu-rep ] || { echo "no report for $who" >> "$R"; tail -5 /tmp/src_${cell}_$who.log >> "$R"; continue; }
  ncu --import /tmp/src_${cell}_$who.ncu-rep --page source --csv --print-source sass > /tmp/src_${cell}_$who.csv 2>&1
  gzip -c /tmp/src_${cell}_$who.csv > "$OUT/ncu_source_${cell}_$who.csv.gz"
  echo "## $who" >> "$R"
  ncu --import /tmp/src_${cell}_$who.ncu-rep --page details --csv 2>/dev/null |
    grep -E '"(Function Name|Duration|Registers Per Thread|Grid Size|Block Size)' | head -8 >> "$R"
  python3 - /tmp/src_${cell}_$who.csv >> "$R" 2>&1 <<'EOF'
import csv, collections, re, sys
lines = open(sys.argv[1], errors="replace").read().splitlines()
start = next((i for i, l in enumerate(lines) if l.startswith('"#') or l.startswith('"Address')), None)
if start is None:
    print("no source table:", *lines[:5], sep="\n"); sys.exit()
rows = list(csv.reader(lines[start:]))
head = rows[0]
print("columns:", " | ".join(head))
def col(*names):
    for n in names:
        for i, h in enumerate(head):
            if h.strip().lower() == n.lower(): return i
    return None
src = col("Source")
execd = col("Instructions Executed", "Warp Instructions Executed")
allsamp = col("Warp Stall Sampling (All Samples)", "Sampling Data (All)")
stall_cols = [(i, h) for i, h in enumerate(head) if h.startswith("stall_") or "Stall Reason" in h]
def num(r, i):
    try: return float(r[i].replace(",", "")) if i is not None and i < len(r) and r[i] else 0.0
    except ValueError: return 0.0
body = [r for r in rows[1:] if src is not None and len(r) > src]
op = lambda r: re.sub(r"^@!?U?P\w+\s+", "", r[src].strip()).split(" ")[0]
by_op = collections.defaultdict(lambda: [0.0, 0.0])
for r in body:
    by_op[op(r)][0] += num(r, execd); by_op[op(r)][1] += num(r, allsamp)
tot_e = sum(v[0] for v in by_op.values()) or 1; tot_s = sum(v[1] for v in by_op.values()) or 1
print(f"instructions executed (warp-level): {tot_e:.4g}; stall samples: {tot_s:.4g}; SASS lines: {len(body)}")
print("opcode  executed%  samples%")
for k, v in sorted(by_op.items(), key=lambda kv: -kv[1][0])[:30]:
    print(f"{k:12s} {100*v[0]/tot_e:6.2f} {100*v[1]/tot_s:6.2f}")
if stall_cols:
    tot = {h: sum(num(r, i) for r in body) for i, h in stall_cols}
    print("stall reasons (samples):", ", ".join(f"{h}={v:.0f}" for h, v in sorted(tot.items(), key=lambda kv: -kv[1]) if v))
print("top 40 instructions by stall samples (address, samples, executed, reason columns > 5% of the line, SASS):")
addr = col("# Address", "Address")
for r in sorted(body, key=lambda r: -num(r, allsamp))[:40]:
    s = num(r, allsamp)
    why = " ".join(f"{h}={num(r, i):.0f}" for i, h in stall_cols if num(r, i) > 0.05 * s)
    print(f"{r[addr] if addr is not None else '?'} {s:.0f} {num(r, execd):.0f} [{why}] {r[src].strip()}")
EOF
done

#!/usr/bin/env bash
# Where the sm_90a kernel's issue slots go, per execution pipe: one full Nsight Compute collection
# per cell, reduced to the pipe, issue and stall metrics. Run from the repository root after
# `source .devdeps/gpu-env.sh` and a build with pfa_fa3_bench in $BUILD/bin:
#   bench/gpu/ncu_pipes.sh "D L causal variant" ...   (default: the cells the notes ask about)
# Writes $OUT/ncu_pipes.txt.
set -u
OUT=${OUT:-/tmp/fa3-out}
BUILD=${BUILD:-/tmp/build}
mkdir -p "$OUT"
R="$OUT/ncu_pipes.txt"
: > "$R"
cells=("$@")
[ ${#cells[@]} -eq 0 ] && cells=("64 8192 0 3" "128 8192 0 3" "128 512 0 1")
for cell in "${cells[@]}"; do
  set -- $cell
  rep=/tmp/ncu_d$1_l$2_c$3_v$4
  echo "### D=$1 L=$2 causal=$3 variant=$4" >> "$R"
  timeout ${PFA_NCU_SECONDS:-150} ncu --set full -k regex:fa3_fwd_kernel --launch-skip 2 -c 1 -f -o "$rep" \
    "$BUILD/bin/pfa_fa3_bench" --single "$1" "$2" "$3" "$4" > "$rep.log" 2>&1
  echo "ncu rc=$?" >> "$R"
  # The raw page is one header row of metric names, a row of units and a row of values.
  ncu --import "$rep.ncu-rep" --page raw --csv 2>/dev/null | python3 -c '
import csv, re, sys
rows = list(csv.reader(sys.stdin))
if len(rows) < 3:
    print("no data"); sys.exit()
keep = re.compile(r"(pipe_.*(pct_of_peak|cycles_active)|issue_active|inst_executed\.avg\.per_cycle_active"
                  r"|warp_issue_stalled_.*per_warp_active|gpc__cycles_elapsed\.max|sm__throughput"
                  r"|dram__throughput|lts__throughput|dram__bytes_(read|write)\.sum)")
for name, unit, value in zip(rows[0], rows[1], rows[2]):
    if keep.search(name):
        try:
            if float(value.replace(",", "")) == 0: continue
        except ValueError:
            continue
        print(f"{name} {value} {unit}")
' >> "$R" 2>&1
done

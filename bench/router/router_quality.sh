#!/usr/bin/env bash
# Router quality on the CPU backends: bench a training set of shapes into a fresh store, train,
# then evaluate on shapes the model never saw, beside every fixed backend and the best fixed
# sequence-length threshold rule. Writes the store, the JSON and a markdown table to OUT_DIR and a
# dated copy of the table to bench/results/.
# Usage: bench/router/router_quality.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$root/build}"
out="${2:-$(mktemp -d /tmp/pfa-router-quality.XXXXXX)}"
mkdir -p "$out"
tune="$build/bin/pfa-tune"
store="$out/router_quality.db"
rm -f "$store" "$store-wal" "$store-shm"
backends="${PFA_QUALITY_BACKENDS:-cpu_flash,torch_sdpa}"
repeat="${PFA_QUALITY_REPEAT:-5}"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
for shapes in "$here/train_shapes.csv" "$here/train_decode_shapes.csv"; do
  "$tune" --store "$store" --json bench --shapes "$shapes" --backends "$backends" \
    --repeat "$repeat" >> "$out/bench.json"
done
"$tune" --store "$store" --json train > "$out/train.json"
"$tune" --store "$store" --json evaluate --shapes "$here/test_shapes.csv" --repeat "$repeat" \
  > "$out/evaluate.json"
seconds=$(( $(date +%s) - start ))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$out" "$root" "$backends" "$seconds" "$load_before" "$load_after" <<'PY'
import json, os, subprocess, sys, datetime, platform
out, root, backends, seconds, load_before, load_after = sys.argv[1:7]
ev = json.load(open(os.path.join(out, "evaluate.json")))
tr = json.load(open(os.path.join(out, "train.json")))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
date = datetime.date.today().isoformat()
def f(x): return "-" if x is None else f"{x:.3f}"
rows = [("router (learned)", ev)] + [(f"always {b}", s) for b, s in sorted(ev["fixed_backends"].items())]
rows.append((f"best threshold rule: {ev['threshold_rule'].get('rule', '')}", ev["threshold_rule"]))
n = len(ev["shapes"])
lines = [
  "# Router quality on CPU backends (unseen shapes)", "",
  f"- machine: {cpu}, {os.cpu_count()} cores ({platform.machine()})",
  f"- date: {date}; commit: {commit}; load average before/after: {load_before} / {load_after}",
  f"- backends: {backends}; training shapes: bench/router/train_shapes.csv and train_decode_shapes.csv; test shapes (never trained on): bench/router/test_shapes.csv ({n})",
  f"- training: {tr.get('train_rows')} runs fitted, {tr.get('holdout_rows')} held out, {tr.get('seconds', 0):.2f} s; whole run {seconds} s",
  "- score: share of oracle per shape = fastest measured median / chosen backend's median (TenSet top-1); geometric mean and worst over the test shapes. Every policy is measured in the same run on the same inputs.",
  "", "| policy | geomean share of oracle | worst | shapes served |", "|---|---|---|---|"]
for name, s in rows:
  lines.append(f"| {name} | {f(s.get('geomean_share_of_oracle'))} | {f(s.get('worst_share_of_oracle'))} | {s.get('served')}/{n} |")
lines += ["", f"Worst shape for the router: {ev.get('worst_shape', '')}", ""]
text = "\n".join(lines)
open(os.path.join(out, "router_quality.md"), "w").write(text)
dest = os.path.join(root, "bench", "results", f"router_quality_{date}.md")
open(dest, "w").write(text)
print(text)
print(f"(written to {dest} and {out})")
PY

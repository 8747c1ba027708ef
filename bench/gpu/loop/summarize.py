#!/usr/bin/env python3
"""Turns one loop run (run_loop.sh) into a results table in markdown: card, date, commit; share of
oracle of the learned router on the unseen shapes against every fixed backend and against plain
torch_sdpa (PyTorch's own kernel order); the worst shape; energy per token per backend (NVML);
routing overhead per call at L = 1024. Reads pfa-tune's JSON; never fails on a missing input, it
says what is missing instead."""
import argparse
import json
import math
import os
import re


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f), None
    except (OSError, ValueError) as e:
        return None, f"{os.path.basename(path)}: {e}"


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError:
        return []


def fmt(x, digits=3):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def field(shape, key):
    m = re.search(rf"(?:^|,){key}=([^,]+)", shape)
    return m.group(1) if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--evaluate", required=True)
    ap.add_argument("--energy")
    ap.add_argument("--device")
    ap.add_argument("--train")
    a = ap.parse_args()

    device = {}
    for line in read_lines(a.device) if a.device else []:
        if ":" in line:
            k, v = line.split(":", 1)
            device[k.strip()] = v.strip()
    card = device.get("gpu", "unknown card").split(",")[0]
    out = [f"# pfa learning loop on {card}", ""]
    out.append(f"- date: {device.get('date', '?')}; commit: {device.get('commit', '?')}")
    out.append(f"- card: {device.get('gpu', '?')}")
    out.append(f"- torch: {device.get('torch', '?')}")
    held = [l for l in read_lines(a.train) if "held-out" in l or "trained model" in l] if a.train else []
    for l in held:
        out.append(f"- train: {l.strip()}")
    out.append("")

    ev, err = load_json(a.evaluate)
    if ev is None:
        out += ["## Router on unseen shapes", "", f"No evaluation: {err}.", ""]
    else:
        shapes = ev.get("shapes", [])
        measured = [s for s in shapes if s.get("costs")]
        out += [f"## Router on {len(measured)} unseen shapes (latency, share of oracle)", ""]
        out.append("Share of oracle = fastest measured backend's time / the policy's backend's time, "
                   "per shape; geometric mean over the shapes the policy serves.")
        out.append("")
        out.append("| policy | geomean share of oracle | worst | worst shape | served |")
        out.append("|---|---|---|---|---|")
        out.append(f"| **router ({ev.get('router', '?')})** | **{fmt(ev.get('geomean_share_of_oracle'))}** | "
                   f"{fmt(ev.get('worst_share_of_oracle'))} | {ev.get('worst_shape', '')} | "
                   f"{ev.get('served', 0)}/{len(measured)} |")
        fixed = ev.get("fixed_backends", {})
        for name in sorted(fixed, key=lambda n: -(fixed[n].get("geomean_share_of_oracle") or 0)):
            s = fixed[name]
            label = f"always {name}" + (" (PyTorch's own order)" if name == "torch_sdpa" else "")
            out.append(f"| {label} | {fmt(s.get('geomean_share_of_oracle'))} | "
                       f"{fmt(s.get('worst_share_of_oracle'))} | {s.get('worst_shape', '')} | "
                       f"{s.get('served', 0)}/{len(measured)} |")
        rule = ev.get("threshold_rule", {})
        if rule.get("rule"):
            out.append(f"| best threshold rule ({rule['rule']}) | {fmt(rule.get('geomean_share_of_oracle'))} | "
                       f"{fmt(rule.get('worst_share_of_oracle'))} | {rule.get('worst_shape', '')} | "
                       f"{rule.get('served', 0)}/{len(measured)} |")
        out.append("")
        g, w = ev.get("geomean_share_of_oracle"), ev.get("worst_share_of_oracle")
        best_fixed = max((s.get("geomean_share_of_oracle") or 0 for s in fixed.values()), default=0)
        out.append(f"- target geomean >= 0.99: {'met' if g is not None and g >= 0.99 else 'missed'} "
                   f"({fmt(g)}); worst >= 0.9: {'met' if w is not None and w >= 0.9 else 'missed'} ({fmt(w)}); "
                   f"at least the best fixed choice ({fmt(best_fixed)}): "
                   f"{'yes' if g is not None and g >= best_fixed - 1e-9 else 'no'}")
        # Speed-up of routing over PyTorch's own order, shape by shape (latency).
        ratios = []
        for s in measured:
            lat = s.get("latency_s", {})
            if s.get("chosen") in lat and "torch_sdpa" in lat:
                ratios.append(lat["torch_sdpa"] / lat[s["chosen"]])
        if ratios:
            gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
            out.append(f"- router vs plain torch_sdpa: {gm:.3f}x geometric-mean speed-up over "
                       f"{len(ratios)} shapes (min {min(ratios):.3f}x, max {max(ratios):.3f}x)")
        skipped = [s for s in shapes if s.get("skipped")]
        if skipped:
            out.append(f"- {len(skipped)} shapes not measured: {skipped[0]['skipped']}")
        out.append("")
        # Where the shapes went.
        chosen, oracle = {}, {}
        for s in measured:
            chosen[s.get("chosen")] = chosen.get(s.get("chosen"), 0) + 1
            oracle[s.get("oracle")] = oracle.get(s.get("oracle"), 0) + 1
        out += ["| backend | router sent | fastest on |", "|---|---|---|"]
        for b in sorted(set(chosen) | set(oracle), key=str):
            out.append(f"| {b} | {chosen.get(b, 0)} | {oracle.get(b, 0)} |")
        out.append("")
        # Worst routed shapes.
        rows = sorted((s for s in measured if s.get("share_of_oracle") is not None),
                      key=lambda s: s["share_of_oracle"])[:5]
        if rows:
            out += ["Worst five routed shapes:", "", "| shape | router | oracle | share |", "|---|---|---|---|"]
            for s in rows:
                out.append(f"| {s['shape']} | {s['chosen']} | {s['oracle']} | {fmt(s['share_of_oracle'])} |")
            out.append("")
        # Routing overhead at L = 1024.
        over = [s for s in shapes if field(s["shape"], "seqlen_q") == "1024" and s.get("routing_overhead")]
        out += ["## Routing overhead per call at L = 1024", ""]
        if over:
            out += ["The router's choose() per call (decision cache warm) against the chosen backend's "
                    "measured call.", "", "| shape | routing us | call ms (chosen) | overhead |", "|---|---|---|---|"]
            for s in over:
                o = s["routing_overhead"]
                lat = s.get("latency_s", {}).get(s.get("chosen"))
                share = o.get("share_of_call")
                out.append(f"| {s['shape']} | {o['route_s'] * 1e6:.2f} | {fmt(lat * 1e3 if lat else None)} | "
                           f"{'-' if share is None else f'{share * 100:.3f} %'} |")
        else:
            out.append("No L = 1024 shape with a routing-overhead figure in the evaluation.")
        out.append("")

    en, err = load_json(a.energy) if a.energy else (None, "no energy file given")
    out += ["## Energy per token (NVML energy counter)", ""]
    if en is None:
        out.append(f"No energy measurement: {err}.")
    else:
        per = {}
        notes = set()
        for r in en.get("results", []):
            if not r.get("ok"):
                continue
            if r.get("energy_measured") and r.get("energy_j") is not None and r.get("tokens"):
                per.setdefault(r["backend"], []).append(r["energy_j"] / r["tokens"])
            elif r.get("energy_note"):
                notes.add(r["energy_note"])
        if per:
            out += ["Energy per call / (batch x seqlen_q), over the energy shapes each backend served "
                    "(bench/gpu/loop/energy.csv).", "",
                    "| backend | shapes | median uJ per token | geomean uJ per token |", "|---|---|---|---|"]
            for b in sorted(per, key=lambda b: sorted(per[b])[len(per[b]) // 2]):
                v = sorted(per[b])
                gm = math.exp(sum(math.log(x) for x in v) / len(v)) if all(x > 0 for x in v) else float("nan")
                out.append(f"| {b} | {len(v)} | {v[len(v) // 2] * 1e6:.3f} | {gm * 1e6:.3f} |")
        else:
            out.append("No measured energy: " + ("; ".join(sorted(notes)) if notes else "nothing recorded") + ".")
    out.append("")
    with open(a.out, "w") as f:
        f.write("\n".join(out))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

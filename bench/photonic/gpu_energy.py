#!/usr/bin/env python3
"""Measured GPU energy per token of exact attention, the baseline for the photonic table.

Runs PyTorch's scaled_dot_product_attention (its flash, cuDNN and memory-efficient backends) on
the same layer the photonic bench models -- batch 1, 8 heads, head_dim 128, bf16, not causal --
for L = 512..8192, and reads the card's energy counter through NVML around a timed loop of calls.
Reports joules per call and per token, both total and above the card's idle draw measured in the
same run, plus the output error against fp64 on sampled rows.

    python3 bench/photonic/gpu_energy.py [--commit HASH] [--out FILE] [--seconds S]
"""
import argparse
import ctypes
import datetime
import math
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HEADS, DIM = 8, 128
LENGTHS = [512, 1024, 2048, 4096, 8192]
BACKENDS = [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
            ("efficient", SDPBackend.EFFICIENT_ATTENTION)]


class Nvml:
    """The two NVML counters this needs, through ctypes (no Python binding required)."""

    def __init__(self, index=0):
        self.lib = ctypes.CDLL("libnvidia-ml.so.1")
        self._check(self.lib.nvmlInit_v2())
        self.handle = ctypes.c_void_p()
        self._check(self.lib.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(self.handle)))

    @staticmethod
    def _check(rc):
        if rc != 0:
            raise RuntimeError(f"NVML call failed with status {rc}")

    def energy_j(self):
        mj = ctypes.c_ulonglong()
        self._check(self.lib.nvmlDeviceGetTotalEnergyConsumption(self.handle, ctypes.byref(mj)))
        return mj.value / 1000.0

    def name(self):
        buf = ctypes.create_string_buffer(96)
        self._check(self.lib.nvmlDeviceGetName(self.handle, buf, 96))
        return buf.value.decode()

    def driver(self):
        buf = ctypes.create_string_buffer(80)
        self._check(self.lib.nvmlSystemGetDriverVersion(buf, 80))
        return buf.value.decode()


def measure(nvml, fn, seconds):
    """Energy (J) and time (s) per call of fn over a loop of about `seconds`."""
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    once = max(time.perf_counter() - start, 1e-6)
    calls = max(10, int(seconds / once))
    # The counter updates every few tens of ms; the loop spans seconds.
    e0, t0 = nvml.energy_j(), time.perf_counter()
    for _ in range(calls):
        fn()
    torch.cuda.synchronize()
    e1, t1 = nvml.energy_j(), time.perf_counter()
    return (e1 - e0) / calls, (t1 - t0) / calls, calls


def rel_error(q, k, v, out, rows=128):
    """||out - exact|| / ||exact|| on the last `rows` query rows, exact in fp64."""
    qs = q[:, :, -rows:].double()
    s = torch.matmul(qs, k.double().transpose(-1, -2)) / math.sqrt(q.shape[-1])
    exact = torch.matmul(torch.softmax(s, dim=-1), v.double())
    got = out[:, :, -rows:].double()
    return (torch.linalg.norm(got - exact) / torch.linalg.norm(exact)).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--out", default="photonic_gpu_energy.md")
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()

    nvml = Nvml()
    torch.manual_seed(0)
    # Idle draw of the card, same run: nothing queued for a few seconds.
    torch.cuda.synchronize()
    time.sleep(1.0)
    e0, t0 = nvml.energy_j(), time.perf_counter()
    time.sleep(3.0)
    idle_w = (nvml.energy_j() - e0) / (time.perf_counter() - t0)

    lines = [
        "# Exact attention on the GPU: measured energy per token (NVML)",
        "",
        f"- card: {nvml.name()}, driver {nvml.driver()}",
        f"- PyTorch {torch.__version__}, CUDA {torch.version.cuda}",
        f"- date: {datetime.date.today().isoformat()}",
        f"- commit: {args.commit}",
        "- program: bench/photonic/gpu_energy.py",
        f"- idle draw measured in this run: {idle_w:.1f} W",
        "",
        f"Batch 1, {HEADS} heads, head_dim {DIM}, bf16, BHSD, not causal; inputs uniform in "
        "[-1, 1) like the photonic bench. Energy from the card's NVML energy counter around a "
        f"loop of about {args.seconds:.0f} s per row; per token = per call / L. 'above idle' "
        "subtracts the idle draw over the loop's time. Error: fp64 reference on the last 128 "
        "query rows.",
        "",
        "| backend | L | ms/call | W avg | mJ/call | uJ/token | uJ/token above idle | "
        "pJ/MAC | rel. error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for L in LENGTHS:
        q, k, v = (torch.rand(1, HEADS, L, DIM, device="cuda", dtype=torch.bfloat16) * 2 - 1
                   for _ in range(3))
        macs = 2.0 * L * L * DIM * HEADS
        for name, backend in BACKENDS:
            try:
                with sdpa_kernel([backend]):
                    out = F.scaled_dot_product_attention(q, k, v)
                    j, s, _ = measure(nvml, lambda: F.scaled_dot_product_attention(q, k, v),
                                      args.seconds)
            except RuntimeError as e:  # a backend that does not take this shape
                lines.append(f"| {name} | {L} | n/a: {str(e).splitlines()[0][:60]} |||||||")
                continue
            err = rel_error(q, k, v, out)
            above = j - idle_w * s
            lines.append(f"| {name} | {L} | {s * 1e3:.3f} | {j / s:.0f} | {j * 1e3:.2f} | "
                         f"{j / L * 1e6:.3f} | {above / L * 1e6:.3f} | {j / macs * 1e12:.2f} | "
                         f"{err:.2e} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()

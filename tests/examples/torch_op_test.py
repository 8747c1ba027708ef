"""torch.ops.pfa.attention from Python: loads libpfa_torch_ops, runs attention through pfa's engine
and compares it with exact attention computed in float64 by PyTorch itself.

Usage: python3 torch_op_test.py LIBPFA_TORCH_OPS.so [LIBTORCH_VERSION]
Exit status 77 (skipped) when PyTorch is not installed, or is another version than the LibTorch
the operator library was built against (its C++ symbols would not match).
"""
import math
import os
import sys

try:
    import torch
except ImportError:
    print("PyTorch for Python is not installed (Debian: python3-torch): skipped")
    sys.exit(77)


def reference(q, k, v, causal, scale):
    # [batch, seq, heads, dim] -> [batch, heads, seq, dim] in float64; GQA by repeating kv heads.
    q, k, v = (t.double().transpose(1, 2) for t in (q, k, v))
    group = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-1, -2) * scale
    lq, lk = q.shape[2], k.shape[2]
    if causal:  # bottom-right aligned: query i sees keys j <= i + lk - lq
        i = torch.arange(lq).unsqueeze(1)
        j = torch.arange(lk).unsqueeze(0)
        scores = scores.masked_fill(j > i + lk - lq, float("-inf"))
    return (scores.softmax(-1) @ v).transpose(1, 2)


def main():
    built = sys.argv[2] if len(sys.argv) > 2 else ""
    if built and built.split(".")[:2] != torch.__version__.split(".")[:2]:
        print(f"PyTorch {torch.__version__} is not the LibTorch {built} the operator was built with: skipped")
        sys.exit(77)
    torch.ops.load_library(sys.argv[1])
    seed = int.from_bytes(os.urandom(4), "little")
    torch.manual_seed(seed)
    print("seed", seed)
    failures = 0
    cases = [
        # batch, seqlen_q, seqlen_k, heads_q, heads_kv, head_dim, causal, dtype, tolerance
        (2, 64, 64, 4, 4, 64, False, torch.float32, 1e-4),
        (1, 33, 77, 8, 2, 128, True, torch.float32, 1e-4),
        (2, 128, 128, 4, 1, 64, True, torch.bfloat16, 2e-2),
    ]
    for b, lq, lk, hq, hkv, d, causal, dtype, tol in cases:
        q = torch.rand(b, lq, hq, d, dtype=dtype) * 2 - 1
        k = torch.rand(b, lk, hkv, d, dtype=dtype) * 2 - 1
        v = torch.rand(b, lk, hkv, d, dtype=dtype) * 2 - 1
        out, backend, latency = torch.ops.pfa.attention_report(q, k, v, causal=causal)
        ref = reference(q, k, v, causal, 1 / math.sqrt(d))
        err = ((out.double() - ref).norm() / ref.norm()).item()
        ok = out.shape == q.shape and out.dtype == dtype and err < tol and backend
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} b={b} lq={lq} lk={lk} hq={hq} hkv={hkv} d={d} causal={causal} "
              f"{dtype}: backend {backend}, {latency * 1e3:.3f} ms, relative error {err:.2e}")
    # The plain operator, a custom scale and the BHSD layout agree with the reference too.
    q, k, v = (torch.rand(1, 4, 50, 32) * 2 - 1 for _ in range(3))
    out = torch.ops.pfa.attention(q, k, v, scale=0.3, layout="bhsd")
    ref = reference(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), False, 0.3).transpose(1, 2)
    err = ((out.double() - ref).norm() / ref.norm()).item()
    failures += not err < 1e-4
    print(f"{'ok  ' if err < 1e-4 else 'FAIL'} bhsd, scale 0.3: relative error {err:.2e}")
    # Bad input is an error with pfa's message, not a crash.
    try:
        torch.ops.pfa.attention(q, k[..., :16], v)
        print("FAIL mismatched head_dim was accepted")
        failures += 1
    except RuntimeError as e:
        print("ok   mismatched head_dim refused:", str(e).splitlines()[0][:100])
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

// pfa-demo: pushes a mixed attention workload through the engine and shows, call by call, which
// backend served it and how fast. Inputs are fresh random values each run.
#include <pfa/engine.h>
#include <pfa/problem.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace {

// A contiguous CPU buffer with a DLTensor view of it.
struct Buffer {
  std::vector<uint16_t> storage;  // fp32 uses two slots per element
  std::vector<int64_t> shape;
  DLTensor tensor{};

  Buffer(pfa_dtype dtype, std::vector<int64_t> dims) : shape(std::move(dims)) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    storage.resize(static_cast<size_t>(n) * (dtype == PFA_DTYPE_FP32 ? 2 : 1));
    tensor.data = storage.data();
    tensor.device = {kDLCPU, 0};
    tensor.ndim = static_cast<int32_t>(shape.size());
    tensor.dtype = dtype == PFA_DTYPE_FP32   ? DLDataType{kDLFloat, 32, 1}
                   : dtype == PFA_DTYPE_FP16 ? DLDataType{kDLFloat, 16, 1}
                                             : DLDataType{kDLBfloat, 16, 1};
    tensor.shape = shape.data();
  }

  void fill_random(std::mt19937& rng, pfa_dtype dtype) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    if (dtype == PFA_DTYPE_FP32) {
      float* p = reinterpret_cast<float*>(storage.data());
      for (size_t i = 0; i < storage.size() / 2; ++i) p[i] = dist(rng);
      return;
    }
    for (auto& h : storage) {
      const float f = dist(rng);
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      if (dtype == PFA_DTYPE_BF16) {
        h = static_cast<uint16_t>(bits >> 16);
      } else {  // a crude fp16 encoding is enough for random demo inputs in [-1, 1)
        const int exponent = static_cast<int>((bits >> 23) & 0xff) - 127 + 15;
        h = exponent <= 0 ? static_cast<uint16_t>((bits >> 16) & 0x8000)
                          : static_cast<uint16_t>(((bits >> 16) & 0x8000) | (exponent << 10) |
                                                  ((bits >> 13) & 0x3ff));
      }
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  try {
    pfa::Engine engine;
    fmt::print("pfa demo: {} backend plugin(s) loaded\n", engine.plugins().size());
    for (const auto& p : engine.plugins()) {
      fmt::print("  {:<14} {:<8} {:<10} {}\n", p->name(), p->version(), p->device_types_text(),
                 p->description());
    }
    for (const auto& e : engine.load_errors()) fmt::print("  not loaded: {}\n", e.message);
    if (engine.plugins().empty()) {
      fmt::print(stderr, "no backend plugins found; build them or set PFA_PLUGIN_PATH\n");
      return 1;
    }

    const char* workload[] = {
        "batch=1,heads_q=8,heads_kv=8,seqlen_q=1,seqlen_k=2048,head_dim=128,dtype=fp32,causal=1",
        "batch=4,heads_q=8,heads_kv=2,seqlen_q=128,seqlen_k=128,head_dim=64,dtype=bf16,causal=0",
        "batch=1,heads_q=8,heads_kv=8,seqlen_q=1024,seqlen_k=1024,head_dim=64,dtype=fp32,causal=1",
        "batch=1,heads_q=8,heads_kv=8,seqlen_q=2048,seqlen_k=2048,head_dim=128,dtype=bf16,causal=0",
        "batch=2,heads_q=16,heads_kv=4,seqlen_q=512,seqlen_k=512,head_dim=96,dtype=fp16,causal=1",
        "batch=1,heads_q=4,heads_kv=4,seqlen_q=4096,seqlen_k=4096,head_dim=64,dtype=bf16,causal=1",
    };
    std::mt19937 rng(std::random_device{}());
    fmt::print("\n{:<88} {:>12} {:>10} {:>9}  {}\n", "problem", "backend", "ms", "GFLOP/s",
               "path");
    for (const char* text : workload) {
      const pfa::Problem p = pfa::parse_problem(text);
      const auto dtype = static_cast<pfa_dtype>(p.dtype);
      Buffer q(dtype, {p.batch, p.seqlen_q, p.heads_q, p.head_dim});
      Buffer k(dtype, {p.batch, p.seqlen_k, p.heads_kv, p.head_dim});
      Buffer v(dtype, {p.batch, p.seqlen_k, p.heads_kv, p.head_dim});
      Buffer out(dtype, {p.batch, p.seqlen_q, p.heads_q, p.head_dim});
      q.fill_random(rng, dtype);
      k.fill_random(rng, dtype);
      v.fill_random(rng, dtype);
      pfa::AttentionOptions options;
      options.causal = p.causal != 0;
      for (int r = 0; r < repeats; ++r) {
        const pfa::Report report = engine.attention(q.tensor, k.tensor, v.tensor, out.tensor, options);
        fmt::print("{:<88} {:>12} {:>10.3f} {:>9.1f}  {}{}\n", text, report.backend,
                   report.latency_s * 1e3, pfa::attention_flops(p) / report.latency_s * 1e-9,
                   report.detail.data(), report.explored ? " (explored)" : "");
      }
    }
    return 0;
  } catch (const pfa::Error& e) {
    fmt::print(stderr, "pfa-demo: {} error: {}\n", pfa::error_code_name(e.code()), e.what());
    return 2;
  }
}

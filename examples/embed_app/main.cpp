// Embeds pfa: loads the installed backends, runs attention on random inputs through the engine,
// checks the output against a plain double-precision computation and prints the Report.
//
//   embed_app [--backend NAME] [--causal]
#include <pfa/engine.h>
#include <pfa/error.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

namespace {

// A dense float32 tensor in [batch, seq, heads, head_dim] order (pfa's BSHD layout) and the
// DLTensor that describes it. DLPack allows NULL strides for compact tensors.
struct Tensor {
  std::vector<float> data;
  std::vector<int64_t> shape;
  DLTensor dl{};

  explicit Tensor(std::vector<int64_t> dims) : shape(std::move(dims)) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    data.assign(static_cast<size_t>(n), 0.0f);
    dl.data = data.data();
    dl.device = {kDLCPU, 0};
    dl.ndim = static_cast<int32_t>(shape.size());
    dl.dtype = {kDLFloat, 32, 1};
    dl.shape = shape.data();
    dl.strides = nullptr;
    dl.byte_offset = 0;
  }
  float at(int64_t b, int64_t s, int64_t h, int64_t d) const {
    return data[static_cast<size_t>(((b * shape[1] + s) * shape[2] + h) * shape[3] + d)];
  }
};

// Exact attention in double, to show the engine's answer is right whichever backend served it.
double relative_error(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                      bool causal) {
  const int64_t B = q.shape[0], Lq = q.shape[1], H = q.shape[2], D = q.shape[3];
  const int64_t Lk = k.shape[1], Hkv = k.shape[2];
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  double num = 0, den = 0;
  std::vector<double> w(static_cast<size_t>(Lk));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Lq; ++i) {
        const int64_t hk = h / (H / Hkv);
        const int64_t visible = causal ? std::min(Lk, i + Lk - Lq + 1) : Lk;
        double m = -INFINITY, sum = 0;
        for (int64_t j = 0; j < visible; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += double(q.at(b, i, h, d)) * k.at(b, j, hk, d);
          w[j] = dot * scale;
          m = std::max(m, w[j]);
        }
        for (int64_t j = 0; j < visible; ++j) sum += (w[j] = std::exp(w[j] - m));
        for (int64_t d = 0; d < D; ++d) {
          double ref = 0;
          for (int64_t j = 0; j < visible; ++j) ref += w[j] / sum * v.at(b, j, hk, d);
          const double diff = out.at(b, i, h, d) - ref;
          num += diff * diff;
          den += ref * ref;
        }
      }
  return std::sqrt(num / den);
}

}  // namespace

int main(int argc, char** argv) {
  pfa::AttentionOptions options;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
      options.backend = argv[++i];  // run exactly this backend instead of routing
    } else if (std::strcmp(argv[i], "--causal") == 0) {
      options.causal = true;
    } else {
      std::fprintf(stderr, "usage: embed_app [--backend NAME] [--causal]\n");
      return 2;
    }
  }
  try {
    // Loads every plugin next to libpfa and in PFA_PLUGIN_PATH; a broken one is reported, not fatal.
    pfa::Engine engine;
    std::printf("plugins:");
    for (const auto& plugin : engine.plugins()) std::printf(" %s", plugin->name().c_str());
    std::printf("\n");
    for (const auto& error : engine.load_errors()) std::printf("not loaded: %s\n", error.message.c_str());

    // Grouped-query attention: 8 query heads share 2 key/value heads.
    const int64_t batch = 2, heads_q = 8, heads_kv = 2, seqlen = 256, head_dim = 64;
    Tensor q({batch, seqlen, heads_q, head_dim});
    Tensor k({batch, seqlen, heads_kv, head_dim});
    Tensor v({batch, seqlen, heads_kv, head_dim});
    Tensor out({batch, seqlen, heads_q, head_dim});
    std::mt19937 rng(std::random_device{}());
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    for (Tensor* t : {&q, &k, &v}) {
      for (float& x : t->data) x = uniform(rng);
    }

    options.layout = PFA_LAYOUT_BSHD;
    const pfa::Report report = engine.attention(q.dl, k.dl, v.dl, out.dl, options);
    const double error = relative_error(q, k, v, out, options.causal);

    std::printf("shape: batch=%lld heads_q=%lld heads_kv=%lld seqlen=%lld head_dim=%lld fp32%s\n",
                static_cast<long long>(batch), static_cast<long long>(heads_q),
                static_cast<long long>(heads_kv), static_cast<long long>(seqlen),
                static_cast<long long>(head_dim), options.causal ? " causal" : "");
    std::printf("report:\n");
    std::printf("  backend         %.*s\n", static_cast<int>(report.backend.size()), report.backend.data());
    std::printf("  detail          %s\n", report.detail.data());
    std::printf("  latency_ms      %.3f\n", report.latency_s * 1e3);
    if (report.energy_j >= 0) {
      std::printf("  energy_j        %.3g (%s)\n", report.energy_j,
                  report.energy_measured ? "measured" : "modelled");
    } else {
      std::printf("  energy_j        unknown\n");
    }
    std::printf("  simulated       %s\n", report.simulated ? "yes" : "no");
    std::printf("  approximate     %s\n", report.approximate ? "yes" : "no");
    std::printf("  error_estimate  %.3g\n", report.error_estimate);
    std::printf("  explored        %s\n", report.explored ? "yes" : "no");
    std::printf("  attempts        %d\n", report.attempts);
    std::printf("relative error vs fp64: %.3g\n", error);
    if (!(error < 1e-4)) {
      std::fprintf(stderr, "embed_app: the output is wrong (relative error %.3g)\n", error);
      return 1;
    }
    return 0;
  } catch (const pfa::Error& e) {
    std::fprintf(stderr, "embed_app: %s (%s)\n", e.what(), pfa::error_code_name(e.code()));
    return 1;
  }
}

// research_bench: how far, and how fast, the research attention backends are from exact softmax
// attention, over sequence length L and input regime rho = softmax_scale * |q|^2 (= |q|^2/sqrt(d)
// at the default scale; |k| is scaled the same way).
//
// For each L: exact attention is timed once (this library's fp32 baseline and, when built, the
// project's cpu_flash kernel); each backend configuration is timed once per L (its cost does not
// depend on the values) and its error measured for every regime on a stratified sample of rows
// against fp64 exact attention: relative output error, max abs error, cosine similarity, and, for
// L <= 1024, the attention-matrix error of the backends that have one. Inputs: q, k, v uniform
// in [-1, 1), q and k rescaled to the regime; B = 1, H = 8, d = 64, fp32.
//
// Usage: research_bench [--max-l N] [--heads H] [--dim D] [--causal] [--out FILE]
#include <pfa/research/exact_attention.h>
#include <pfa/research/performer.h>
#include <pfa/research/qsann.h>
#include <pfa/research/sampled_error.h>
#include <pfa/research/tensor_rows.h>
#ifdef PFA_BENCH_HAVE_SPECTRAL
#include <pfa/research/spectral.h>
#endif
#ifdef PFA_BENCH_HAVE_CPU_FLASH
#include <pfa/kernels/cpu/flash_attention.h>
#endif

#include <tbb/info.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using pfa::kernels::AttentionParams;
namespace research = pfa::research;

struct Options {
  int64_t max_l = 16384;
  int64_t heads = 4;
  int64_t dim = 64;
  bool causal = false;
  std::string out;
};

struct Data {
  int64_t L, H, D;
  std::vector<float> q, k, v, o;
  std::vector<float> q0, k0;  // unscaled draws
  AttentionParams params(bool causal) {
    AttentionParams p;
    p.q = q.data();
    p.k = k.data();
    p.v = v.data();
    p.out = o.data();
    p.batch = 1;
    p.heads_q = p.heads_kv = H;
    p.seqlen_q = p.seqlen_k = L;
    p.head_dim = D;
    const int64_t stride[3] = {L * H * D, H * D, D};
    for (int i = 0; i < 3; ++i) {
      p.q_stride[i] = p.k_stride[i] = p.v_stride[i] = p.o_stride[i] = stride[i];
    }
    p.causal = causal;
    p.softmax_scale = 1.0f / std::sqrt(static_cast<float>(D));
    return p;
  }
  // q and k rescaled so that softmax_scale * |x|^2 is `regime` on average.
  // Keys and values made of three low sinusoids per feature along the sequence plus 5% of the
  // original noise: a sequence a low-pass filter suits.
  void make_smooth(uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(-1, 1);
    for (std::vector<float>* t : {&k0, &v}) {
      for (int64_t h = 0; h < H; ++h)
        for (int64_t e = 0; e < D; ++e) {
          double a[3], ph[3];
          for (int j = 0; j < 3; ++j) {
            a[j] = u(rng);
            ph[j] = 3.14159265 * u(rng);
          }
          for (int64_t s = 0; s < L; ++s) {
            float& x = (*t)[static_cast<size_t>((s * H + h) * D + e)];
            double y = 0.05 * x;
            for (int j = 0; j < 3; ++j) y += a[j] * std::sin(6.2831853 * (j + 1) * s / L + ph[j]);
            x = static_cast<float>(y);
          }
        }
    }
  }
  void set_regime(double regime) {
    const double mean_sq = static_cast<double>(D) / 3.0;
    const float f = static_cast<float>(std::sqrt(regime * std::sqrt(double(D)) / mean_sq));
    for (size_t i = 0; i < q.size(); ++i) {
      q[i] = q0[i] * f;
      k[i] = k0[i] * f;
    }
  }
};

Data make_data(int64_t L, int64_t H, int64_t D, uint64_t seed) {
  Data d{L, H, D, {}, {}, {}, {}, {}, {}};
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const size_t n = static_cast<size_t>(L * H * D);
  d.q0.resize(n);
  d.k0.resize(n);
  d.v.resize(n);
  for (auto& x : d.q0) x = u(rng);
  for (auto& x : d.k0) x = u(rng);
  for (auto& x : d.v) x = u(rng);
  d.q = d.q0;
  d.k = d.k0;
  d.o.assign(n, 0.f);
  return d;
}

double seconds(const std::function<void()>& f, int reps) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Frobenius relative error of approximate attention rows against exact ones, on a few rows.
double matrix_error(Data& d, const AttentionParams& p,
                    const std::function<void(int64_t, int64_t, double*)>& weights) {
  double num = 0, den = 0;
  std::vector<double> approx(static_cast<size_t>(d.L)), exact(static_cast<size_t>(d.L));
  std::vector<float> qi(static_cast<size_t>(d.D)), kj(static_cast<size_t>(d.D));
  const int rows = 16;
  for (int r = 0; r < rows; ++r) {
    const int64_t h = r % d.H, i = (r * 7919 + 13) % d.L;
    const int64_t n = research::visible_keys(p, i);
    weights(h, i, approx.data());
    research::load_row(research::row_address(p.q, p.dtype, p.q_stride, 0, i, h), p.dtype, d.D,
                       qi.data());
    double top = -1e300, total = 0;
    for (int64_t j = 0; j < n; ++j) {
      research::load_row(research::row_address(p.k, p.dtype, p.k_stride, 0, j, h), p.dtype, d.D,
                         kj.data());
      double dot = 0;
      for (int64_t t = 0; t < d.D; ++t) dot += double(qi[t]) * kj[t];
      exact[j] = dot * p.softmax_scale;
      top = std::max(top, exact[j]);
    }
    for (int64_t j = 0; j < n; ++j) total += (exact[j] = std::exp(exact[j] - top));
    for (int64_t j = 0; j < n; ++j) {
      exact[j] /= total;
      num += (approx[j] - exact[j]) * (approx[j] - exact[j]);
      den += exact[j] * exact[j];
    }
  }
  return std::sqrt(num / den);
}

std::string run_command(const std::string& cmd) {
  std::string out;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, f)) out += buf;
    pclose(f);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

// Attention with equal weights on every visible key: running means of V.
void uniform_attention(const AttentionParams& p) {
  const int64_t D = p.head_dim;
  std::vector<double> sum(static_cast<size_t>(D));
  std::vector<float> row(static_cast<size_t>(D));
  for (int64_t h = 0; h < p.heads_q; ++h) {
    std::fill(sum.begin(), sum.end(), 0.0);
    int64_t added = 0;
    for (int64_t i = 0; i < p.seqlen_q; ++i) {
      const int64_t n = research::visible_keys(p, i);
      for (; added < n; ++added) {
        research::load_row(research::row_address(p.v, p.dtype, p.v_stride, 0, added, h), p.dtype,
                           D, row.data());
        for (int64_t d = 0; d < D; ++d) sum[d] += row[d];
      }
      for (int64_t d = 0; d < D; ++d) row[d] = n ? static_cast<float>(sum[d] / n) : 0.f;
      research::store_out_row(p, 0, i, h, row.data());
    }
  }
}

struct Method {
  std::string name;     // backend and setting
  bool matrix;          // has an attention matrix to compare
  int64_t max_l;        // longest L it runs at
  std::function<void(const AttentionParams&)> run;
  std::function<void(const AttentionParams&, int64_t, int64_t, double*)> weights;
};

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int a = 1; a < argc; ++a) {
    const std::string s = argv[a];
    auto next = [&]() -> const char* {
      if (a + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", s.c_str());
        std::exit(2);
      }
      return argv[++a];
    };
    if (s == "--max-l") opt.max_l = std::atoll(next());
    else if (s == "--heads") opt.heads = std::atoll(next());
    else if (s == "--dim") opt.dim = std::atoll(next());
    else if (s == "--causal") opt.causal = true;
    else if (s == "--out") opt.out = next();
    else {
      std::fprintf(stderr, "usage: %s [--max-l N] [--heads H] [--dim D] [--causal] [--out FILE]\n",
                   argv[0]);
      return 2;
    }
  }

  std::vector<Method> methods;
  for (int64_t m : {64, 256, 1024}) {
    research::PerformerConfig c;
    c.features = m;
    methods.push_back({"performer m=" + std::to_string(m), true, 16384,
                       [c](const AttentionParams& p) { research::performer_attention(p, c); },
                       [c](const AttentionParams& p, int64_t h, int64_t i, double* w) {
                         research::performer_attention_weights(p, c, 0, h, i, w);
                       }});
  }
#ifdef PFA_BENCH_HAVE_SPECTRAL
  for (int64_t modes : {16, 64, 128}) {
    research::SpectralConfig c;
    c.modes = modes;
    c.block = 256;
    methods.push_back({"spectral lowpass " + std::to_string(modes) + "/256", false, 16384,
                       [c](const AttentionParams& p) { research::spectral_attention(p, c); },
                       nullptr});
  }
  if (!opt.causal) {
    // One block for the whole sequence: cost O(L log L + L * modes), linear in L.
    research::SpectralConfig whole;
    whole.modes = 256;
    whole.block = 0;
    methods.push_back({"spectral lowpass 256/all", false, 16384,
                       [whole](const AttentionParams& p) { research::spectral_attention(p, whole); },
                       nullptr});
    methods.push_back({"spectral fnet", false, 16384,
                       [](const AttentionParams& p) { research::fnet_mixing(p); }, nullptr});
  }
#endif
  for (int qubits : {4, 8, 12}) {
    research::QsannConfig c;
    c.qubits = qubits;
    methods.push_back({"quantum n=" + std::to_string(qubits), true, qubits >= 12 ? 256 : 1024,
                       [c](const AttentionParams& p) { research::qsann_attention(p, c); },
                       [c](const AttentionParams& p, int64_t h, int64_t i, double* w) {
                         research::qsann_attention_weights(p, c, 0, h, i, w);
                       }});
  }

  // The trivial reference: every query gets the mean of the values it sees. A backend whose error
  // sits at this row has learned nothing from q.k on these inputs.
  methods.push_back({"(uniform: mean of visible V)", true, 16384,
                     [](const AttentionParams& p) { uniform_attention(p); },
                     [](const AttentionParams& p, int64_t, int64_t i, double* w) {
                       const int64_t n = research::visible_keys(p, i);
                       std::fill(w, w + n, 1.0 / static_cast<double>(n));
                     }});

  const double regimes[] = {0.5, 1, 2, 4, 8};
  std::ostringstream md;
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  // The source tree's commit; from the working directory when the build's source has no .git.
  std::string git = std::string("git -C '") + PFA_SOURCE_DIR + "'";
  if (run_command(git + " rev-parse --git-dir 2>/dev/null").empty()) git = "git";
  const std::string commit = run_command(git + " rev-parse --short HEAD 2>/dev/null");
  const std::string dirty =
      run_command(git + " status --porcelain -- research/performer research/spectral "
                        "research/quantum plugins/performer plugins/spectral plugins/quantum "
                        "bench/research 2>/dev/null");
  md << "# Research attention: error and speed against exact attention\n\n";
  md << "- machine: " << cpu_model() << ", " << tbb::info::default_concurrency()
     << " threads (oneTBB)\n";
  md << "- date: " << date << "\n";
  md << "- commit: " << (commit.empty() ? "unknown" : commit)
     << (dirty.empty() ? "" : " (with local changes to the research backends or this benchmark)") << "\n";
  md << "- problem: B=1, H=" << opt.heads << ", d=" << opt.dim << ", fp32, "
     << (opt.causal ? "causal" : "not causal")
     << ", q/k/v uniform in [-1,1), q and k rescaled so that rho = |q|^2/sqrt(d) (softmax scale "
        "1/sqrt(d))\n";
  md << "- errors: on a stratified sample of 256 query rows against fp64 exact attention; "
        "attention-matrix error on 16 rows (L <= 1024)\n";
  md << "- baseline: exact fp32 attention measured in the same run (`exact` = research support "
        "library, `cpu_flash` = the project's exact CPU kernel)\n\n";

  size_t printed = 0;
  for (int64_t L = 256; L <= opt.max_l; L *= 4) {
    Data d = make_data(L, opt.heads, opt.dim, 0x5eed + static_cast<uint64_t>(L));
    AttentionParams p = d.params(opt.causal);
    const int reps = L >= 16384 ? 1 : 3;
    md << "## L = " << L << "\n\n";
    md << "Exact attention: " << std::fixed;
    md.precision(4);
    double exact_s = 0;
    if (L <= 4096) {  // the plain baseline is slow; cpu_flash is the one to beat
      exact_s = seconds([&] { research::exact_attention(p); }, reps);
      md << "`exact` " << exact_s << " s";
    } else {
      md << "`exact` not timed";
    }
#ifdef PFA_BENCH_HAVE_CPU_FLASH
    const double flash_s = seconds([&] { pfa::kernels::cpu::flash_attention(p); }, reps);
    md << ", `cpu_flash` (" << pfa::kernels::cpu::isa_name(pfa::kernels::cpu::best_isa(p.dtype))
       << ") " << flash_s << " s";
#else
    const double flash_s = exact_s;
#endif
    md << ".\n\n";
    md << "| backend | time s | speed-up vs cpu_flash | rho | rel. output error | max abs error | "
          "cosine | attention-matrix error |\n";
    md << "|---|---|---|---|---|---|---|---|\n";
    for (const Method& m : methods) {
      if (L > m.max_l) continue;
      d.set_regime(1.0);
      const double t = seconds([&] { m.run(p); }, reps);
      std::fprintf(stderr, "L=%lld %s: %.3f s\n", static_cast<long long>(L), m.name.c_str(), t);
      for (double rho : regimes) {
        d.set_regime(rho);
        m.run(p);
        const auto e = research::sampled_error(p, 256);
        std::string matrix = "n/a";
        if (m.matrix && L <= 1024) {
          char buf[32];
          std::snprintf(buf, sizeof buf, "%.3f", matrix_error(d, p, [&](int64_t h, int64_t i,
                                                                         double* w) {
                          m.weights(p, h, i, w);
                        }));
          matrix = buf;
        }
        char row[512];
        std::snprintf(row, sizeof row, "| %s | %.4f | %.3gx | %.1f | %.3f | %.3f | %.3f | %s |\n",
                      m.name.c_str(), t, flash_s / t, rho, e.rel_error, e.max_abs_error, e.cosine,
                      matrix.c_str());
        md << row;
      }
    }
    md << "\n";
    // Print what is new; rewrite the whole file so a long run leaves its finished lengths behind.
    const std::string text = md.str();
    std::fputs(text.c_str() + printed, stdout);
    std::fflush(stdout);
    printed = text.size();
    if (!opt.out.empty()) std::ofstream(opt.out) << text;
  }

  // Where a low-pass filter belongs: smooth keys and values.
  {
    const int64_t L = std::min<int64_t>(4096, opt.max_l);
    Data d = make_data(L, opt.heads, opt.dim, 0xc0ffee);
    d.make_smooth(0xbeef);
    AttentionParams p = d.params(opt.causal);
    md << "## Smooth keys and values, L = " << L << "\n\n";
    md << "K and V: three low sinusoids per feature along the sequence plus 5% of the uniform "
          "noise; q uniform. Same measures as above.\n\n";
    md << "| backend | rho | rel. output error | max abs error | cosine |\n|---|---|---|---|---|\n";
    for (const Method& m : methods) {
      if (m.name.rfind("quantum", 0) == 0) continue;
      for (double rho : {1.0, 4.0}) {
        d.set_regime(rho);
        m.run(p);
        const auto e = research::sampled_error(p, 256);
        char row[256];
        std::snprintf(row, sizeof row, "| %s | %.1f | %.4f | %.4f | %.4f |\n", m.name.c_str(), rho,
                      e.rel_error, e.max_abs_error, e.cosine);
        md << row;
      }
    }
    md << "\n";
    const std::string text = md.str();
    std::fputs(text.c_str() + printed, stdout);
    if (!opt.out.empty()) std::ofstream(opt.out) << text;
  }
  return 0;
}

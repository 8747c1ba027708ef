// Benchmark: cuda_fa3's kernels beside PyTorch SDPA with each backend forced (flash, cuDNN,
// memory-efficient), same inputs, same stream, one run. The FlashAttention-3 paper's grid:
// B*L = 16k tokens, H*D = 2048, L = 512..16384, D = 64/128/256, causal and not, bf16 and fp16.
// FLOPs = 4*B*H*L^2*D, halved when causal. CUDA-event timing after warm-up, median of repeats,
// two input sets alternated so the L2 (50 MB) never holds the next call's inputs.
// Prints a markdown table (card, date, commit, TFLOP/s, ratio to cuDNN) and an accuracy check.
#include <torch/version.h>

#if TORCH_VERSION_MAJOR >= 2

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/util/Exception.h>
#include <pfa/kernels/cuda/attention_cuda.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace kc = pfa::kernels::cuda;

struct Options {
  std::string commit = "unknown";
  std::string out;      // markdown file; stdout always gets it too
  bool quick = false;   // a few cells only
  bool variants = false;  // time every sm_90a variant, report the best
  int repeats = 15;
  std::vector<int64_t> dims, lens;  // --dims 96,192 / --lens 512,8192: override the grid's
  // --single D L causal variant: run only ours on one cell a few times (for a profiler).
  bool single = false;
  int64_t single_d = 128, single_l = 8192;
  bool single_causal = false;
  int single_variant = -1;
};

enum class Backend { flash, cudnn, mem_efficient };

void force_backend(Backend b) {
  auto& ctx = at::globalContext();
  ctx.setSDPUseFlash(b == Backend::flash);
  ctx.setSDPUseCuDNN(b == Backend::cudnn);
  ctx.setSDPUseMemEfficient(b == Backend::mem_efficient);
  ctx.setSDPUseMath(false);
}

struct Inputs {
  at::Tensor q, k, v;  // [B, H, L, D] contiguous (the layout every SDPA backend likes)
};

struct Candidate {
  std::string name;
  std::function<void(int)> fn;  // runs once on input set i
};

// Median milliseconds of each candidate over `repeats` rounds; the candidates take turns within
// each round (so clock or thermal drift hits them alike) and alternate input sets. NaN for a
// candidate that throws during warm-up.
std::vector<double> time_many(const std::vector<Candidate>& cands, int sets, int repeats) {
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  std::vector<bool> ok(cands.size(), true);
  for (size_t c = 0; c < cands.size(); ++c) {
    try {
      for (int i = 0; i < 3; ++i) cands[c].fn(i % sets);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "    (%s skipped: %.200s)\n", cands[c].name.c_str(), e.what());
      cudaDeviceSynchronize();
      cudaGetLastError();
      ok[c] = false;
    }
  }
  std::vector<cudaEvent_t> ev(2 * repeats * cands.size());
  for (auto& e : ev) cudaEventCreate(&e);
  for (int r = 0; r < repeats; ++r)
    for (size_t c = 0; c < cands.size(); ++c) {
      if (!ok[c]) continue;
      const size_t k = 2 * (r * cands.size() + c);
      cudaEventRecord(ev[k], stream);
      cands[c].fn(r % sets);
      cudaEventRecord(ev[k + 1], stream);
    }
  cudaDeviceSynchronize();
  std::vector<double> med(cands.size(), NAN);
  for (size_t c = 0; c < cands.size(); ++c) {
    if (!ok[c]) continue;
    std::vector<double> ms(repeats);
    for (int r = 0; r < repeats; ++r) {
      const size_t k = 2 * (r * cands.size() + c);
      float t = 0;
      cudaEventElapsedTime(&t, ev[k], ev[k + 1]);
      ms[r] = t;
    }
    std::sort(ms.begin(), ms.end());
    med[c] = ms[repeats / 2];
  }
  for (auto& e : ev) cudaEventDestroy(e);
  return med;
}

kc::LaunchResult run_ours(const Inputs& in, at::Tensor& out, bool causal, int variant,
                          int persistent = -1) {
  pfa::kernels::AttentionParams p;
  const auto B = in.q.size(0), H = in.q.size(1), L = in.q.size(2), D = in.q.size(3);
  p.q = in.q.data_ptr();
  p.k = in.k.data_ptr();
  p.v = in.v.data_ptr();
  p.out = out.data_ptr();
  p.batch = B;
  p.heads_q = p.heads_kv = H;
  p.seqlen_q = p.seqlen_k = L;
  p.head_dim = D;
  p.dtype = in.q.scalar_type() == at::kBFloat16 ? pfa::kernels::DType::bf16 : pfa::kernels::DType::fp16;
  p.causal = causal;
  p.softmax_scale = float(1.0 / std::sqrt(double(D)));
  // BHSD memory seen through the kernels' logical [batch, seq, head, dim] order.
  const int64_t s[3] = {H * L * D, D, L * D};
  for (int i = 0; i < 3; ++i) p.q_stride[i] = p.k_stride[i] = p.v_stride[i] = p.o_stride[i] = s[i];
  kc::LaunchOptions opt;
  opt.path = kc::Path::sm90;
  opt.sm90_variant = variant;
  opt.persistent = persistent;
  return kc::attention_forward(p, at::cuda::getCurrentCUDAStream(), opt);
}

at::Tensor sdpa(const Inputs& in, bool causal) {
  return at::scaled_dot_product_attention(in.q, in.k, in.v, {}, 0.0, causal);
}

// ||x - ref|| / ||ref|| with ref the fp32 math attention of batch 0 (fp32 inputs upcast).
double rel_error(const at::Tensor& x, const Inputs& in, bool causal) {
  auto q = in.q.select(0, 0).to(at::kFloat), k = in.k.select(0, 0).to(at::kFloat),
       v = in.v.select(0, 0).to(at::kFloat);
  auto s = at::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(double(q.size(-1))));
  if (causal) {
    auto mask = at::ones({q.size(1), k.size(1)}, s.options().dtype(at::kBool)).triu(1);
    s = s.masked_fill(mask, -INFINITY);
  }
  auto ref = at::matmul(at::softmax(s, -1), v);
  auto got = x.select(0, 0).to(at::kFloat);
  return ((got - ref).norm() / ref.norm()).item<double>();
}

// "96,192" -> {96, 192}; every entry a whole number in [lo, hi], else empty with `error` set.
std::vector<int64_t> parse_list(const std::string& s, int64_t lo, int64_t hi, std::string* error) {
  std::vector<int64_t> v;
  for (size_t i = 0; i <= s.size();) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    const std::string item = s.substr(i, j - i);
    char* end = nullptr;
    const long long x = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || x < lo || x > hi) {
      *error = "'" + item + "' is not a whole number from " + std::to_string(lo) + " to " +
               std::to_string(hi);
      return {};
    }
    v.push_back(x);
    i = j + 1;
  }
  return v;
}

std::string today() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--commit" && i + 1 < argc) opt.commit = argv[++i];
    else if (a == "--out" && i + 1 < argc) opt.out = argv[++i];
    else if (a == "--quick") opt.quick = true;
    else if (a == "--variants") opt.variants = true;
    else if (a == "--repeats" && i + 1 < argc) opt.repeats = std::atoi(argv[++i]);
    else if ((a == "--dims" || a == "--lens") && i + 1 < argc) {
      // Head dims the kernels serve; lengths up to the grid's 16384 tokens per batch.
      std::string error;
      const bool dims = a == "--dims";
      auto list = parse_list(argv[++i], dims ? 8 : 1, dims ? 256 : 16384, &error);
      if (list.empty()) {
        std::fprintf(stderr, "pfa_fa3_bench: %s: %s\n", a.c_str(), error.c_str());
        return 2;
      }
      (dims ? opt.dims : opt.lens) = std::move(list);
    }
    else if (a == "--single" && i + 4 < argc) {
      opt.single = true;
      opt.single_d = std::atoll(argv[++i]);
      opt.single_l = std::atoll(argv[++i]);
      opt.single_causal = std::atoi(argv[++i]) != 0;
      opt.single_variant = std::atoi(argv[++i]);
    }
  }
  if (opt.single) {
    const int64_t D = opt.single_d, L = opt.single_l, B = 16384 / L, H = 2048 / D;
    const auto o = at::TensorOptions().dtype(at::kBFloat16).device(at::kCUDA);
    Inputs in{at::randn({B, H, L, D}, o), at::randn({B, H, L, D}, o), at::randn({B, H, L, D}, o)};
    at::Tensor out = at::empty({B, H, L, D}, o);
    for (int r = 0; r < 5; ++r) {
      const kc::LaunchResult res = run_ours(in, out, opt.single_causal, opt.single_variant);
      if (!res.ok()) {
        std::fprintf(stderr, "%s\n", res.message.c_str());
        return 1;
      }
    }
    cudaDeviceSynchronize();
    return 0;
  }
  std::string card;
  const std::string device = kc::describe_device(0, &card);
  std::string md;
  auto emit = [&](const char* fmt, auto... args) {
    char buf[1024];
    std::snprintf(buf, sizeof buf, fmt, args...);
    md += buf;
    std::fputs(buf, stdout);
    std::fflush(stdout);
  };
  emit("%s", "# cuda_fa3 forward attention vs PyTorch SDPA backends\n\n");
  emit("- card: %s\n- date: %s\n- commit: %s\n- PyTorch %s (LibTorch, C++)\n", device.c_str(),
       today().c_str(), opt.commit.c_str(), TORCH_VERSION);
  emit("- grid: B*L = 16384 tokens, H = 2048 / D (rounded down), BHSD inputs, FLOPs = 4*B*H*L^2*D (halved when "
       "causal); median of %d CUDA-event timings after 3 warm-ups, two input sets alternated\n",
       opt.repeats);
  emit("- ours = sm_90a default variant%s; TFLOP/s, ratio = ours / cuDNN\n\n",
       opt.variants ? " and the best of all variants" : "");
  if (opt.variants)
    emit("| dtype | D | L | causal | ours | best | best TFLOP/s | flash | cuDNN | mem-eff | ours/cuDNN | best/cuDNN | grid v0..v%d | persistent p0..p%d | heavy-first l0..l%d |\n"
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
         kc::sm90_variant_count() - 1, kc::sm90_variant_count() - 1, kc::sm90_variant_count() - 1);
  else
    emit("%s", "| dtype | D | L | causal | ours | flash | cuDNN | mem-eff | ours/cuDNN |\n"
         "|---|---|---|---|---|---|---|---|---|\n");

  std::vector<int64_t> dims = {64, 128, 256};
  std::vector<int64_t> lens = {512, 1024, 2048, 4096, 8192, 16384};
  std::vector<at::ScalarType> types = {at::kBFloat16, at::kHalf};
  if (opt.quick) {
    dims = {64, 128, 256};
    lens = {2048, 8192};
    types = {at::kBFloat16};
  }
  if (!opt.dims.empty()) dims = opt.dims;
  if (!opt.lens.empty()) lens = opt.lens;
  struct Acc {
    std::string what;
    double ours, flash, cudnn;
  };
  std::vector<Acc> accuracy;
  for (auto dt : types)
    for (int64_t D : dims)
      for (int64_t L : lens)
        for (bool causal : {false, true}) {
          const int64_t B = 16384 / L, H = 2048 / D;
          const auto o = at::TensorOptions().dtype(dt).device(at::kCUDA);
          std::vector<Inputs> sets(2);
          for (auto& s : sets)
            s = {at::randn({B, H, L, D}, o), at::randn({B, H, L, D}, o), at::randn({B, H, L, D}, o)};
          at::Tensor out = at::empty({B, H, L, D}, o);
          const double flops = 4.0 * B * H * double(L) * L * D * (causal ? 0.5 : 1.0);
          auto tflops = [&](double ms) { return flops / (ms * 1e-3) / 1e12; };
          auto ours_fn = [&](int variant, int persistent) {
            return [&, variant, persistent](int s) {
              const kc::LaunchResult r = run_ours(sets[s], out, causal, variant, persistent);
              if (!r.ok()) throw std::runtime_error(r.message);
            };
          };
          auto sdpa_fn = [&](Backend b) {
            return [&, b](int s) {
              force_backend(b);
              (void)sdpa(sets[s], causal);
            };
          };
          std::vector<Candidate> cands = {{"ours", ours_fn(-1, -1)},
                                          {"flash", sdpa_fn(Backend::flash)},
                                          {"cudnn", sdpa_fn(Backend::cudnn)},
                                          {"mem-eff", sdpa_fn(Backend::mem_efficient)}};
          if (opt.variants)
            for (int pers : {0, 1, 2}) {
              if (pers == 2 && !causal) continue;  // the heavy-first order only matters causal
              for (int v = 0; v < kc::sm90_variant_count(); ++v)
                cands.push_back({std::string(pers == 0 ? "v" : pers == 1 ? "p" : "l") + std::to_string(v),
                                 ours_fn(v, pers)});
            }
          const std::vector<double> t = time_many(cands, 2, opt.repeats);
          const double t_ours = t[0];
          const double t_b[3] = {t[1], t[2], t[3]};
          double t_best = t_ours;
          std::string best_name = "ours";
          std::string grid_cols, pers_cols, lpt_cols;
          for (size_t c = 4; c < cands.size(); ++c) {
            if (std::isfinite(t[c]) && !(t[c] >= t_best)) {
              t_best = t[c];
              best_name = cands[c].name;
            }
            char buf[16];
            const bool first = (c - 4) % kc::sm90_variant_count() == 0;
            std::snprintf(buf, sizeof buf, "%s%.0f", first ? "" : "/", tflops(t[c]));
            const char kind = cands[c].name[0];
            (kind == 'p' ? pers_cols : kind == 'l' ? lpt_cols : grid_cols) += buf;
          }
          const char* tn = dt == at::kBFloat16 ? "bf16" : "fp16";
          if (opt.variants)
            emit("| %s | %ld | %ld | %s | %.0f | %s | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %s | %s | %s |\n", tn,
                 D, L, causal ? "yes" : "no", tflops(t_ours), best_name.c_str(), tflops(t_best),
                 tflops(t_b[0]), tflops(t_b[1]), tflops(t_b[2]), t_b[1] / t_ours, t_b[1] / t_best,
                 grid_cols.c_str(), pers_cols.c_str(), lpt_cols.empty() ? "-" : lpt_cols.c_str());
          else
            emit("| %s | %ld | %ld | %s | %.0f | %.0f | %.0f | %.0f | %.2f |\n", tn, D, L,
                 causal ? "yes" : "no", tflops(t_ours), tflops(t_b[0]), tflops(t_b[1]),
                 tflops(t_b[2]), t_b[1] / t_ours);
          if (L == 2048) {
            // Same inputs through ours, flash and cuDNN against an fp32 reference.
            Acc a;
            char what[96];
            std::snprintf(what, sizeof what, "%s D=%ld L=%ld %s", tn, D, L, causal ? "causal" : "full");
            a.what = what;
            const kc::LaunchResult r = run_ours(sets[0], out, causal, -1);
            a.ours = r.ok() ? rel_error(out, sets[0], causal) : NAN;
            force_backend(Backend::flash);
            try { a.flash = rel_error(sdpa(sets[0], causal), sets[0], causal); } catch (...) { a.flash = NAN; }
            force_backend(Backend::cudnn);
            try { a.cudnn = rel_error(sdpa(sets[0], causal), sets[0], causal); } catch (...) { a.cudnn = NAN; }
            accuracy.push_back(a);
          }
          cudaDeviceSynchronize();
        }
  emit("%s", "\n## Accuracy (relative error vs fp32 math attention, batch 0, same inputs)\n\n"
       "| case | ours | flash | cuDNN | ours / min(flash, cuDNN) |\n|---|---|---|---|---|\n");
  for (const Acc& a : accuracy)
    emit("| %s | %.2e | %.2e | %.2e | %.2f |\n", a.what.c_str(), a.ours, a.flash, a.cudnn,
         a.ours / std::min(a.flash, a.cudnn));
  if (!opt.out.empty()) {
    if (FILE* f = std::fopen(opt.out.c_str(), "w")) {
      std::fputs(md.c_str(), f);
      std::fclose(f);
    }
  }
  return 0;
}

#else
#include <cstdio>
int main() {
  std::puts("pfa_fa3_bench needs LibTorch 2.x");
  return 0;
}
#endif

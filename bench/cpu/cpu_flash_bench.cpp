// cpu_flash against LibTorch's CPU attention on the same inputs, in one process.
//
// Baseline = the faster of LibTorch's fused attention entry point (1.13: _scaled_dot_product_
// attention; 2.x: scaled_dot_product_attention) and the explicit math formulation
// (matmul, softmax, matmul), both with every core. FLOPs = 4 * B * H * L^2 * D, halved when
// causal. Each cell: one warm-up each, then rounds that run cpu_flash, sdpa and math in turn
// (so load changes hit all three alike); medians. Writes a markdown table headed with machine,
// date, commit, LibTorch version, threads and load.
//
//   cpu_flash_bench [--quick] [--flash-only] [--isa NAME] [--repeats N] [--max-len L]
//                   [--out FILE] [--repo DIR]
//                   [--dtype fp32|bf16] [--dim 64|128] [--causal 0|1]
// --flash-only skips LibTorch (for tuning; writes no file); --isa forces a cpu_flash path;
// --dtype/--dim/--causal pick a subset of the table.
#include <pfa/kernels/cpu/cpu_info.h>
#include <pfa/kernels/cpu/flash_attention.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace cpu = pfa::kernels::cpu;
using Clock = std::chrono::steady_clock;

std::string shell(const std::string& command) {
  std::string out;
  if (FILE* f = popen(command.c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof buf, f)) out += buf;
    pclose(f);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// Lets the other library's spinning worker threads go idle before the next timing. OpenBLAS's
// pthreads busy-wait for about 2^28 cycles (~0.1 s) after a call, and would otherwise share a
// core with cpu_flash's second thread; oneTBB's workers spin for microseconds.
void settle(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Times several contenders on the same inputs, interleaved: one warm-up each, then rounds in
// which every contender runs once, so a change of machine load hits all of them alike. Stops
// after `rounds` or once past `budget_s` (at least 3 rounds). Returns each one's median seconds.
std::vector<double> time_interleaved(const std::vector<std::function<void()>>& fns, int rounds,
                                     double budget_s) {
  std::vector<std::vector<double>> t(fns.size());
  // Contender 0 is cpu_flash; the others are LibTorch calls that may leave OpenBLAS spinning.
  auto pause_after = [&](size_t i) { settle(i == 0 ? 30 : 300); };
  for (size_t i = 0; i < fns.size(); ++i) {
    fns[i]();
    pause_after(i);
  }
  const auto start = Clock::now();
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < fns.size(); ++i) {
      const auto a = Clock::now();
      fns[i]();
      t[i].push_back(std::chrono::duration<double>(Clock::now() - a).count());
      if (fns.size() > 1) pause_after(i);
    }
    if (r >= 2 && std::chrono::duration<double>(Clock::now() - start).count() > budget_s) break;
  }
  std::vector<double> medians;
  for (auto& v : t) {
    std::sort(v.begin(), v.end());
    medians.push_back(v[v.size() / 2]);
  }
  return medians;
}

// The BLAS library this process actually mapped (LibTorch 1.13 on Debian goes through libblas.so.3,
// which the alternatives system points at OpenBLAS or the reference BLAS).
std::string blas_in_use() {
  std::ifstream maps("/proc/self/maps");
  std::string line, found;
  while (std::getline(maps, line)) {
    const auto slash = line.rfind('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(line.find('/'));
    if (path.find("blas") != std::string::npos && found.find(path) == std::string::npos)
      found += (found.empty() ? "" : ", ") + path;
  }
  return found.empty() ? "none mapped" : found;
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}


struct Cell {
  std::string dtype;
  int64_t len, dim;
  bool causal;
  double flash_s, sdpa_s, math_s, rel_err;
  std::string isa;
};

at::Tensor torch_sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool causal) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, {}, 0.0, causal);
#else
  return std::get<0>(at::_scaled_dot_product_attention(q, k, v, {}, 0.0, false, causal));
#endif
}

at::Tensor torch_math(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                      const at::Tensor& mask, double scale) {
  at::Tensor s = at::matmul(q, k.transpose(-2, -1)).mul_(scale);
  if (mask.defined()) s.masked_fill_(mask, -std::numeric_limits<double>::infinity());
  return at::matmul(at::softmax(s, -1), v);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, flash_only = false;
  cpu::Isa forced = cpu::Isa::amx;
  bool force = false;
  int repeats = 5;
  int64_t max_len = 8192;
  std::string out_path, repo = PFA_SOURCE_DIR, only_dtype;
  int64_t only_dim = 0;
  int only_causal = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--flash-only") flash_only = true;
    else if (a == "--dtype" && i + 1 < argc) only_dtype = argv[++i];
    else if (a == "--dim" && i + 1 < argc) only_dim = std::atoll(argv[++i]);
    else if (a == "--causal" && i + 1 < argc) only_causal = std::atoi(argv[++i]);
    else if (a == "--isa" && i + 1 < argc) {
      const std::string name = argv[++i];
      force = true;
      for (cpu::Isa isa : {cpu::Isa::scalar, cpu::Isa::avx2, cpu::Isa::avx512,
                           cpu::Isa::avx512_bf16, cpu::Isa::amx})
        if (name == cpu::isa_name(isa)) forced = isa;
    } else if (a == "--repeats" && i + 1 < argc) repeats = std::atoi(argv[++i]);
    else if (a == "--max-len" && i + 1 < argc) max_len = std::atoll(argv[++i]);
    else if (a == "--out" && i + 1 < argc) out_path = argv[++i];
    else if (a == "--repo" && i + 1 < argc) repo = argv[++i];
    else {
      std::cerr << "usage: cpu_flash_bench [--quick] [--flash-only] [--isa NAME] [--dtype T] [--dim D] "
                   "[--causal 0|1] [--repeats N] [--max-len L] [--out FILE] [--repo DIR]\n";
      return 2;
    }
  }
  const int threads = static_cast<int>(std::thread::hardware_concurrency());
  at::set_num_threads(threads);
  at::manual_seed(1234);

  char date[32], stamp[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d", std::gmtime(&now));
  if (out_path.empty()) out_path = repo + "/bench/results/cpu_flash_" + stamp + ".md";
  const std::string commit = shell("git -C '" + repo + "' rev-parse --short HEAD 2>/dev/null");
  const std::string load_before = shell("cut -d' ' -f1-3 /proc/loadavg");

  std::ostringstream isa_list;
  for (cpu::Isa isa : {cpu::Isa::avx2, cpu::Isa::avx512, cpu::Isa::avx512_bf16, cpu::Isa::amx})
    if (cpu::isa_available(isa)) isa_list << cpu::isa_name(isa) << ' ';

  const int64_t batch = 1, heads = 8;
  std::vector<int64_t> lens = {128, 256, 512, 1024, 2048, 4096, 8192};
  if (quick) lens = {256, 1024, 4096};
  std::vector<Cell> cells;
  for (const char* dtype_name : {"fp32", "bf16"}) {
    if (!only_dtype.empty() && only_dtype != dtype_name) continue;
    const bool bf16 = std::string(dtype_name) == "bf16";
    const auto st = bf16 ? at::kBFloat16 : at::kFloat;
    for (int64_t dim : {64, 128}) {
      if (only_dim != 0 && dim != only_dim) continue;
      for (bool causal : {false, true}) {
        if (only_causal >= 0 && causal != (only_causal != 0)) continue;
        for (int64_t len : lens) {
          if (len > max_len) continue;
          // BHSD tensors, as LibTorch wants them; cpu_flash reads the same memory through strides.
          at::Tensor q = at::randn({batch, heads, len, dim}).to(st);
          at::Tensor k = at::randn({batch, heads, len, dim}).to(st);
          at::Tensor v = at::randn({batch, heads, len, dim}).to(st);
          at::Tensor out = at::empty_like(q);
          pfa::kernels::AttentionParams p;
          p.q = q.data_ptr();
          p.k = k.data_ptr();
          p.v = v.data_ptr();
          p.out = out.data_ptr();
          p.batch = batch;
          p.heads_q = p.heads_kv = heads;
          p.seqlen_q = p.seqlen_k = len;
          p.head_dim = dim;
          for (int64_t* s : {p.q_stride, p.k_stride, p.v_stride, p.o_stride}) {
            s[0] = heads * len * dim;
            s[1] = dim;
            s[2] = len * dim;
          }
          p.dtype = bf16 ? pfa::kernels::DType::bf16 : pfa::kernels::DType::fp32;
          p.causal = causal;
          p.softmax_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dim)));

          const double budget = len >= 4096 ? 20.0 : 4.0;
          Cell c{dtype_name, len, dim, causal, 0, 0, 0, 0, ""};
          at::Tensor mask;
          if (causal) mask = at::ones({len, len}, at::kBool).triu(1);
          at::Tensor ref;
          cpu::Isa ran = cpu::Isa::scalar;
          double flash_cpu_s = 0;
          int flash_calls = 0;
          std::vector<std::function<void()>> fns = {[&] {
            const double cpu0 = process_cpu_seconds();
            ran = force ? cpu::flash_attention(p, forced) : cpu::flash_attention(p);
            flash_cpu_s += process_cpu_seconds() - cpu0;
            ++flash_calls;
          }};
          if (!flash_only) {
            fns.push_back([&] { ref = torch_sdpa(q, k, v, causal); });
            fns.push_back([&] { torch_math(q, k, v, mask, p.softmax_scale); });
          }
          const std::vector<double> med = time_interleaved(fns, repeats, budget);
          c.flash_s = med[0];
          c.sdpa_s = flash_only ? std::numeric_limits<double>::quiet_NaN() : med[1];
          c.math_s = flash_only ? std::numeric_limits<double>::quiet_NaN() : med[2];
          // Core-seconds per call (process CPU time): a load-independent view for tuning.
          const double core_s = flash_cpu_s / flash_calls;
          c.isa = cpu::isa_name(ran);
          if (!flash_only) {
            const at::Tensor diff = out.to(at::kFloat) - ref.to(at::kFloat);
            c.rel_err = (diff.norm() / ref.to(at::kFloat).norm()).item<double>();
          }
          cells.push_back(c);
          const double flops = 4.0 * batch * heads * len * len * dim * (causal ? 0.5 : 1.0);
          std::printf("%s D=%3lld %-6s L=%5lld  flash %8.2f GF/s (%s)  sdpa %7.2f  math %7.2f  "
                      "x%.2f  err %.1e  [%.1f GF per core-second]\n",
                      dtype_name, static_cast<long long>(dim), causal ? "causal" : "full",
                      static_cast<long long>(len), flops / c.flash_s * 1e-9, c.isa.c_str(),
                      flops / c.sdpa_s * 1e-9, flops / c.math_s * 1e-9,
                      std::min(c.sdpa_s, c.math_s) / c.flash_s, c.rel_err, flops / core_s * 1e-9);
          std::fflush(stdout);
        }
      }
    }
  }
  const std::string load_after = shell("cut -d' ' -f1-3 /proc/loadavg");
  if (flash_only) return 0;

  std::ostringstream md;
  md << "# cpu_flash vs LibTorch CPU attention\n\n"
     << "- machine: " << cpu::cpu_model_name() << ", " << threads << " cores, ISA: "
     << isa_list.str() << "\n"
     << "- date: " << date << "\n"
     << "- commit: " << (commit.empty() ? "unknown" : commit) << "\n"
     << "- LibTorch " << TORCH_VERSION << ", " << at::get_num_threads()
     << " threads; baseline = faster of "
#if TORCH_VERSION_MAJOR >= 2
     << "`at::scaled_dot_product_attention`"
#else
     << "`at::_scaled_dot_product_attention`"
#endif
     << " and matmul+softmax+matmul (MKL: " << (at::hasMKL() ? "yes" : "no") << "; BLAS mapped: "
     << blas_in_use() << ")\n"
     << "- cpu_flash threads: " << threads << " (oneTBB)\n"
     << "- load average before / after: " << load_before << " / " << load_after << "\n"
     << "- B=1, H=8, BHSD inputs; GFLOP/s = 4·B·H·L²·D (halved causal) / median time; "
     << "ratio = baseline time / cpu_flash time; err = ||cpu_flash - sdpa|| / ||sdpa||; "
     << "median of " << repeats << " interleaved rounds (at least 3) after a warm-up\n\n";
  std::string group;
  for (const Cell& c : cells) {
    const std::string g = c.dtype + ", D=" + std::to_string(c.dim) + (c.causal ? ", causal" : "");
    if (g != group) {
      group = g;
      md << "\n## " << g << "\n\n| L | cpu_flash GFLOP/s | path | sdpa GFLOP/s | math GFLOP/s | "
            "ratio | err |\n|---|---|---|---|---|---|---|\n";
    }
    const double flops = 4.0 * batch * heads * c.len * c.len * c.dim * (c.causal ? 0.5 : 1.0);
    char row[256];
    std::snprintf(row, sizeof row, "| %lld | %.1f | %s | %.1f | %.1f | %.2fx | %.1e |\n",
                  static_cast<long long>(c.len), flops / c.flash_s * 1e-9, c.isa.c_str(),
                  flops / c.sdpa_s * 1e-9, flops / c.math_s * 1e-9,
                  std::min(c.sdpa_s, c.math_s) / c.flash_s, c.rel_err);
    md << row;
  }
  std::ofstream(out_path) << md.str();
  std::printf("\nwrote %s\n", out_path.c_str());
  return 0;
}

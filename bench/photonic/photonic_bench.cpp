// photonic_bench: the table hardware papers print, made honest. For L = 512..8192 and each
// profile and bit width: modelled energy per token and latency of the simulated engine (never
// measured: no such chip exists here), the attention output error measured through the simulated
// device against exact fp64 attention, and the simulator's own speed next to exact CPU attention
// measured in the same run. Writes a markdown report with machine, date and commit.
//
//   photonic_bench [--out FILE] [--quick]
#include <pfa/photonic/attention.h>
#include <pfa/photonic/calibration.h>
#include <pfa/photonic/cost_model.h>
#include <pfa/photonic/counter_rng.h>
#include <pfa/photonic/device.h>

#ifdef PFA_BENCH_WITH_CPU_FLASH
#include <pfa/kernels/cpu/flash_attention.h>
#endif

#include <tbb/info.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace ph = pfa::photonic;

namespace {

std::string shell(const std::string& command) {
  std::array<char, 256> buf{};
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return out;
  while (fgets(buf.data(), buf.size(), pipe.get()) != nullptr) out += buf.data();
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

std::string today() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

// fp32 tensors [1, seq, heads, dim], uniform in [-1, 1) from a seed.
struct Tensors {
  int64_t seq_q, seq_k, heads, dim;
  std::vector<float> q, k, v, out;
  Tensors(int64_t sq, int64_t sk, int64_t h, int64_t d, uint64_t seed)
      : seq_q(sq), seq_k(sk), heads(h), dim(d), q(sq * h * d), k(sk * h * d), v(sk * h * d),
        out(sq * h * d) {
    const uint64_t key = ph::stream_key(seed, 1);
    uint64_t n = 0;
    for (auto* t : {&q, &k, &v})
      for (float& x : *t) x = static_cast<float>(2 * ph::uniform(key, n++) - 1);
  }
  pfa::kernels::AttentionParams params() {
    pfa::kernels::AttentionParams p;
    p.q = q.data();
    p.k = k.data();
    p.v = v.data();
    p.out = out.data();
    p.batch = 1;
    p.heads_q = p.heads_kv = heads;
    p.seqlen_q = seq_q;
    p.seqlen_k = seq_k;
    p.head_dim = dim;
    for (auto* s : {p.q_stride, p.k_stride, p.v_stride, p.o_stride}) {
      s[1] = heads * dim;
      s[2] = dim;
    }
    p.q_stride[0] = p.o_stride[0] = seq_q * heads * dim;
    p.k_stride[0] = p.v_stride[0] = seq_k * heads * dim;
    p.softmax_scale = 1.0f / std::sqrt(static_cast<float>(dim));
    return p;
  }
};

template <typename F>
double best_seconds(F&& f, int repeats) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

std::string fmt(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_path;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) out_path = argv[++i];
    else if (a == "--quick") quick = true;
    else {
      std::cerr << "usage: photonic_bench [--out FILE] [--quick]\n";
      return 2;
    }
  }
  const std::string repo = PFA_SOURCE_DIR;
  if (out_path.empty()) out_path = repo + "/bench/results/photonic_" + today() + ".md";
  const std::string commit = shell("git -C '" + repo + "' rev-parse --short HEAD 2>/dev/null");

  const std::vector<int64_t> lengths = quick ? std::vector<int64_t>{512, 2048}
                                             : std::vector<int64_t>{512, 1024, 2048, 4096, 8192};
  const std::vector<std::string> profiles = {"generic", "envise_like"};
  const std::vector<int> bit_widths = {4, 6, 8};
  constexpr int64_t kHeads = 8, kDim = 128;   // the modelled layer
  constexpr int64_t kSliceRows = 128;         // query rows simulated for the error column

  std::ostringstream md;
  md << "# photonic_sim: modelled cost and measured error of the simulated optical engine\n\n"
     << "- machine: " << cpu_model() << ", " << tbb::info::default_concurrency() << " threads\n"
     << "- date: " << today() << "\n"
     << "- commit: " << (commit.empty() ? "unknown" : commit) << "\n"
     << "- program: bench/photonic/photonic_bench" << (quick ? " --quick" : "") << "\n\n"
     << "Energy and latency are **modelled** from the profile's device parameters "
        "(research/photonic/profiles); no optical hardware was measured. Error is **measured**: "
        "attention computed through the simulated device (calibrated, noise on) against exact "
        "fp64 attention on the same inputs.\n\n";

  // 1. Calibration of each profile's simulated chip (device seed 1).
  md << "## Calibration (device seed 1, 8 bits)\n\n";
  for (const auto& name : profiles) {
    ph::SimConfig config;
    ph::SimulatedDevice d(ph::load_profile(name), config);
    const ph::CalibrationData cal = ph::calibrate(d);
    md << "- " << name << ": " << ph::summary(cal.report) << "\n";
  }

  // 2. Modelled cost of one attention layer, batch 1, 8 heads, head_dim 128, bf16, not causal.
  md << "\n## Modelled cost: batch 1, 8 heads, head_dim 128, bf16, not causal\n\n"
     << "Energy per token = energy of the whole layer call / query tokens. fJ/MAC counts every "
        "component (optics, converters, SRAM, DRAM, softmax) over the 2 L^2 d H useful MACs.\n\n"
     << "| profile | bits | L | latency (us) | energy/token (uJ) | fJ/MAC | converters | "
        "modulators | laser | detector+TIA | SRAM+DRAM | softmax |\n"
     << "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& name : profiles) {
    const ph::DeviceParams p = ph::load_profile(name);
    for (int bits : bit_widths) {
      ph::CostConfig c;
      c.dac_bits = c.adc_bits = bits;
      for (int64_t L : lengths) {
        ph::AttentionShape s;
        s.heads_q = s.heads_kv = kHeads;
        s.head_dim = kDim;
        s.seqlen_q = s.seqlen_k = L;
        const ph::AttentionCost cost = ph::attention_cost(p, c, s);
        const ph::EnergyBreakdown& e = cost.energy;
        const double total = e.total_j();
        auto pct = [&](double j) { return fmt("%.0f%%", 100 * j / total); };
        md << "| " << name << " | " << bits << " | " << L << " | "
           << fmt("%.1f", cost.latency_s * 1e6) << " | "
           << fmt("%.3f", total / static_cast<double>(L) * 1e6) << " | "
           << fmt("%.0f", cost.energy_per_mac_j() * 1e15) << " | " << pct(e.converters_j())
           << " | " << pct(e.modulator_j) << " | " << pct(e.laser_j) << " | "
           << pct(e.detector_j) << " | " << pct(e.sram_j + e.dram_j) << " | "
           << pct(e.softmax_j) << " |\n";
      }
    }
  }
  {
    // The GPU line hardware papers compare against, derived (not measured) from the H100 SXM
    // datasheet: 700 W at 989 dense bf16 TFLOP/s -> 1.41 pJ/MAC.
    const double h100_j_per_mac = 1.41e-12;
    md << "\nFor scale (derived from datasheet rates, not measured): an H100 SXM at 700 W and "
          "dense bf16 peak is about 1.41 pJ/MAC, i.e. "
       << fmt("%.3f", h100_j_per_mac * 2.0 * 8192 * kDim * kHeads * 1e6)
       << " uJ/token at L = 8192 for this layer (2 L d H MACs per token). Measured NVML energy "
          "of the GPU backends belongs next to this on the GPU machine.\n";
  }

  // 3. Measured output error through the simulated device: one head, the last kSliceRows query
  //    rows against all L keys (the error depends on L through the softmax and P.V lengths).
  md << "\n## Measured output error: 1 head, " << kSliceRows
     << " query rows x L keys, head_dim 128, inputs uniform in [-1, 1)\n\n"
     << "Relative error ||out - exact|| / ||exact|| over all simulated rows; exact = fp64.\n\n"
     << "| profile | bits | L | rel. error | ADC clipped | simulated in (s) |\n|---|---|---|---|---|---|\n";
  for (const auto& name : profiles) {
    for (int bits : bit_widths) {
      ph::SimConfig config;
      config.dac_bits = config.adc_bits = bits;
      ph::SimulatedDevice d(ph::load_profile(name), config);
      ph::CalibrationOptions options;
      options.measure_error = false;
      ph::calibrate(d, options);
      for (int64_t L : lengths) {
        Tensors t(kSliceRows, L, 1, kDim, 1000 + L);
        auto p = t.params();
        ph::PhotonicRunStats stats;
        const double s = best_seconds([&] { stats = ph::photonic_attention(d, p, 1); }, 1);
        const ph::SampledError err = ph::sampled_error(p, static_cast<int>(kSliceRows));
        md << "| " << name << " | " << bits << " | " << L << " | " << fmt("%.4f", err.rel_error)
           << " | " << fmt("%.2g", static_cast<double>(stats.clipped) / stats.detections)
           << " | " << fmt("%.2f", s) << " |\n";
        std::cerr << name << " " << bits << " bits L=" << L << " error " << err.rel_error << "\n";
      }
    }
  }

  // 4. The simulator's own speed against exact CPU attention on the same shape, same run.
  {
    const int64_t L = quick ? 1024 : 2048;
    Tensors t(L, L, 2, kDim, 7);
    auto p = t.params();
    const double flops = 4.0 * L * L * kDim * 2;
    ph::SimConfig config;
    ph::SimulatedDevice d(ph::load_profile("generic"), config);
    const double sim_s = best_seconds([&] { ph::photonic_attention(d, p, 1); }, 3);
    const double exact_s = best_seconds([&] { ph::exact_attention(p); }, 3);
    md << "\n## Simulator speed: batch 1, 2 heads, L = " << L << ", head_dim 128, fp32, "
       << tbb::info::default_concurrency() << " threads\n\n"
       << "| what | time (s) | GFLOP/s (4 L^2 d H) | simulator / this |\n|---|---|---|---|\n"
       << "| photonic_attention (generic, 8 bits, noise on) | " << fmt("%.3f", sim_s) << " | "
       << fmt("%.2f", flops / sim_s * 1e-9) << " | 1 |\n"
       << "| exact_attention (plain fp32, TBB rows) | " << fmt("%.3f", exact_s) << " | "
       << fmt("%.2f", flops / exact_s * 1e-9) << " | " << fmt("%.2f", exact_s / sim_s) << " |\n";
#ifdef PFA_BENCH_WITH_CPU_FLASH
    std::string isa;
    const double flash_s = best_seconds(
        [&] { isa = pfa::kernels::cpu::isa_name(pfa::kernels::cpu::flash_attention(p)); }, 3);
    md << "| cpu_flash (" << isa << ") | " << fmt("%.3f", flash_s) << " | "
       << fmt("%.2f", flops / flash_s * 1e-9) << " | " << fmt("%.3f", flash_s / sim_s) << " |\n";
#endif
  }

  std::ofstream(out_path) << md.str();
  std::cout << md.str();
  std::cerr << "wrote " << out_path << "\n";
  return 0;
}

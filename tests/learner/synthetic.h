// A synthetic world for the learner's tests: three in-process backends with a known cost function
// and deliberately wrong estimates, and records drawn from that cost function with noise.
//
//   alpha: low overhead, slow compute  (wins small problems)  — its estimate claims it always wins
//   beta:  high overhead, fast compute (wins large problems)  — its estimate is pessimistic
//   gamma: fast on causal problems only                       — its estimate ignores causality
// so the cold-start rule (trust the estimates) picks alpha everywhere and loses on large problems.
#pragma once

#include <pfa/learner/features.h>
#include <pfa/problem.h>
#include <pfa/router.h>
#include <pfa/store/execution_record.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace pfa::test {

inline constexpr int kAlpha = 0, kBeta = 1, kGamma = 2;
inline const char* const kNames[] = {"alpha", "beta", "gamma"};

// True latency in seconds, noiseless.
inline double true_latency(int backend, const Problem& p) {
  const double f = attention_flops(p);
  switch (backend) {
    case kAlpha: return 20e-6 + f / 40e9;
    case kBeta: return 250e-6 + f / 200e9;
    default: return 120e-6 + f / (p.causal ? 300e9 : 60e9);
  }
}

inline double estimated_latency(int backend, const Problem& p) {
  const double f = attention_flops(p);
  switch (backend) {
    case kAlpha: return 5e-6 + f / 1000e9;
    case kBeta: return 400e-6 + f / 150e9;
    default: return 150e-6 + f / 100e9;
  }
}

template <int K>
struct FakeBackend {
  static pfa_status create(const pfa_host_info*, pfa_context** c, char*, size_t) {
    *c = nullptr;
    return PFA_STATUS_OK;
  }
  static void destroy(pfa_context*) {}
  static pfa_status supports(pfa_context*, const pfa_problem* p, char* reason, size_t capacity) {
    if (K == kGamma && p->head_dim > 128) {
      std::snprintf(reason, capacity, "head_dim above 128");
      return PFA_STATUS_UNSUPPORTED;
    }
    return PFA_STATUS_OK;
  }
  static pfa_status estimate(pfa_context*, const pfa_problem* p, pfa_estimate* e, char*, size_t) {
    e->latency_s = estimated_latency(K, *p);
    e->energy_j = -1;
    e->rel_error = 0;
    return PFA_STATUS_OK;
  }
  static pfa_status run(pfa_context*, const pfa_run_args*, pfa_run_result*, char*, size_t) {
    return PFA_STATUS_OK;
  }
  static pfa_status device_info(pfa_context*, int32_t, int32_t, pfa_device_info*, char*, size_t) {
    return PFA_STATUS_OK;
  }
  static const pfa_plugin_api* api() {
    static const pfa_plugin_api table = {sizeof(pfa_plugin_api), PFA_ABI_VERSION_MAJOR,
                                         PFA_ABI_VERSION_MINOR, kNames[K], "1.0", "synthetic",
                                         PFA_PROP_THREAD_SAFE, 1u << kDLCPU, create, destroy,
                                         supports, estimate, run, device_info, nullptr};
    return &table;
  }
};

inline PluginList make_plugins() {
  PluginList list;
  list.push_back(std::make_unique<Plugin>(nullptr, FakeBackend<kAlpha>::api(), "alpha.so"));
  list.push_back(std::make_unique<Plugin>(nullptr, FakeBackend<kBeta>::api(), "beta.so"));
  list.push_back(std::make_unique<Plugin>(nullptr, FakeBackend<kGamma>::api(), "gamma.so"));
  return list;
}

inline Problem random_problem(std::mt19937_64& rng) {
  auto pick = [&](std::initializer_list<int64_t> values) {
    return *(values.begin() + std::uniform_int_distribution<size_t>(0, values.size() - 1)(rng));
  };
  const int64_t heads = pick({4, 8, 16});
  const int64_t seq = int64_t{1} << std::uniform_int_distribution<int>(5, 12)(rng);
  const int64_t seq_k = std::uniform_int_distribution<int>(0, 3)(rng) == 0 ? seq * 2 : seq;
  return make_problem(pick({1, 2, 4}), heads, heads / pick({1, 2}), seq, seq_k, pick({64, 128}),
                      PFA_DTYPE_FP32, std::uniform_int_distribution<int>(0, 1)(rng) == 1);
}

inline store::ExecutionRecord make_record(const Problem& p, int backend, double latency,
                                          bool ok = true) {
  store::ExecutionRecord r;
  r.problem = p;
  store::set_text(r.backend, kNames[backend]);
  store::set_text(r.device_class, "cpu");
  r.latency_s = latency;
  r.ok = ok;
  if (!ok) store::set_text(r.failure, "internal: synthetic failure");
  return r;
}

// `shapes` random problems, every backend measured `repeats` times with 5% lognormal noise.
inline std::vector<store::ExecutionRecord> make_records(size_t shapes, int repeats, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, 0.05);
  std::vector<store::ExecutionRecord> out;
  for (size_t s = 0; s < shapes; ++s) {
    const Problem p = random_problem(rng);
    for (int b = 0; b < 3; ++b) {
      if (b == kGamma && p.head_dim > 128) continue;
      for (int r = 0; r < repeats; ++r) {
        out.push_back(make_record(p, b, true_latency(b, p) * std::exp(noise(rng))));
      }
    }
  }
  return out;
}

// Share of the oracle of a routing function over problems, by the true cost: geometric mean.
template <typename Pick>
double geomean_share(const std::vector<Problem>& problems, Pick pick) {
  double sum = 0;
  for (const auto& p : problems) {
    double best = 1e30;
    for (int b = 0; b < 3; ++b) best = std::min(best, true_latency(b, p));
    sum += std::log(best / true_latency(pick(p), p));
  }
  return std::exp(sum / static_cast<double>(problems.size()));
}

}  // namespace pfa::test

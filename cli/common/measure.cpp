#include "measure.h"

#include <algorithm>

namespace pfa::cli {

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

Measurement measure(Engine& engine, ProblemTensors& tensors, const std::string& backend,
                    int warmup, int repeat) {
  Measurement m;
  m.backend = backend;
  AttentionOptions options = tensors.options();
  options.backend = backend;
  options.what_if = true;
  options.max_rel_error = 1e9;
  std::vector<double> energies;
  try {
    for (int i = 0; i < warmup; ++i) {
      engine.attention(tensors.q.dl(), tensors.k.dl(), tensors.v.dl(), tensors.out.dl(), options);
    }
    for (int i = 0; i < repeat; ++i) {
      const Report r = engine.attention(tensors.q.dl(), tensors.k.dl(), tensors.v.dl(),
                                        tensors.out.dl(), options);
      m.simulated = r.simulated;
      m.latencies_s.push_back(r.simulated && r.modelled_latency_s > 0 ? r.modelled_latency_s
                                                                      : r.latency_s);
      if (r.energy_j >= 0) energies.push_back(r.energy_j);
      m.detail = r.detail.data();
    }
    m.ok = true;
    m.median_s = median(m.latencies_s);
    m.energy_j = energies.empty() ? -1 : median(energies);
  } catch (const Error& e) {
    m.ok = false;
    m.failure = e.what();
  }
  return m;
}

}  // namespace pfa::cli

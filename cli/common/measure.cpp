#include "measure.h"

#include "cuda_events.h"
#include "nvml_energy.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>

namespace pfa::cli {

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One NVML handle per CUDA device for the process (nvmlInit costs milliseconds).
const detail::NvmlEnergy& energy_counter(const detail::CudaRuntime& rt, int device) {
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<detail::NvmlEnergy>> counters;
  std::lock_guard lock(mutex);
  auto& slot = counters[device];
  if (!slot) {
    char bus[64] = {0};
    std::string id;
    if (rt.device_get_pci_bus_id(bus, sizeof bus, device) == 0) id = bus;
    else rt.get_last_error();
    slot = std::make_unique<detail::NvmlEnergy>(id, device);
  }
  return *slot;
}

// Energy per call from the counter: calls run back to back in batches of about `batch_s`, the
// stream synchronised after each batch and the counter read. The window starts at the first step
// of the counter and ends at the first step after `window_s`, so both ends sit on counter updates
// (the counter moves every few tens of milliseconds, not per call).
void measure_energy(Engine& engine, ProblemTensors& t, const AttentionOptions& options,
                    const detail::CudaRuntime& rt, double window_s, Measurement& m) {
  const detail::NvmlEnergy& nvml = energy_counter(rt, t.problem.device_id);
  if (!nvml.available()) {
    m.energy_note = nvml.why_not();
    return;
  }
  const double batch_s = 0.004;
  const double give_up_s = 4 * window_s + 0.5;
  auto sync = [&] { rt.stream_synchronize(options.stream); };
  sync();
  uint64_t e0 = 0;
  if (!nvml.read_mj(e0)) {
    m.energy_note = "reading the energy counter failed";
    return;
  }
  const double start = now_s();
  long calls = 0;
  bool started = false;
  uint64_t e_a = 0, e_b = 0, last = e0;
  long n_a = 0, n_b = 0;
  double t_a = 0, t_b = 0;
  while (true) {
    const double batch_start = now_s();
    do {
      engine.attention(t.q.dl(), t.k.dl(), t.v.dl(), t.out.dl(), options);
      ++calls;
    } while (now_s() - batch_start < batch_s);
    sync();
    const double now = now_s();
    uint64_t e = 0;
    if (!nvml.read_mj(e)) {
      m.energy_note = "reading the energy counter failed";
      return;
    }
    if (e != last) {
      if (!started) {
        started = true;
        e_a = e, n_a = calls, t_a = now;
      } else {
        e_b = e, n_b = calls, t_b = now;
        if (t_b - t_a >= window_s) break;
      }
      last = e;
    }
    if (now - start > give_up_s) {
      m.energy_note = fmt::format("the energy counter did not step twice {} s apart within {} s",
                                  window_s, give_up_s);
      return;
    }
  }
  m.energy_j = static_cast<double>(e_b - e_a) * 1e-3 / static_cast<double>(n_b - n_a);
  m.energy_measured = true;
  m.energy_note = fmt::format("NVML energy counter: {} mJ over {} calls in {:.0f} ms",
                              e_b - e_a, n_b - n_a, (t_b - t_a) * 1e3);
}

}  // namespace

void record_measurement(Engine& engine, ProblemTensors& tensors, const Measurement& m,
                        ExecutionObserver& recorder) {
  if (!m.ok) return;
  const Plugin* plugin = engine.find_plugin(m.backend);
  if (plugin == nullptr) return;
  const AttentionOptions options = tensors.options();
  const Problem problem =
      engine.describe(tensors.q.dl(), tensors.k.dl(), tensors.v.dl(), tensors.out.dl(), options);
  const RoutingPolicy policy{Objective::latency, 1e9, true};  // as measure() forces the backend
  for (const Report& r : m.reports) {
    recorder.on_execution(Execution{problem, *plugin, policy, PFA_STATUS_OK, "", r});
  }
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

Measurement measure(Engine& engine, ProblemTensors& tensors, const std::string& backend,
                    int warmup, int repeat) {
  MeasureOptions o;
  o.warmup = warmup;
  o.repeat = repeat;
  return measure(engine, tensors, backend, o);
}

Measurement measure(Engine& engine, ProblemTensors& tensors, const std::string& backend,
                    const MeasureOptions& o) {
  Measurement m;
  m.backend = backend;
  AttentionOptions options = tensors.options();
  options.backend = backend;
  options.what_if = true;
  options.max_rel_error = 1e9;
  std::vector<double> energies;
  const bool cuda = tensors.problem.device_type == kDLCUDA;
  const detail::CudaRuntime* rt = cuda ? detail::cuda_runtime() : nullptr;
  std::unique_ptr<detail::EventPool> pool;
  detail::EventPair events;
  if (rt != nullptr) {
    pool = std::make_unique<detail::EventPool>(*rt);
    if (!pool->take(tensors.problem.device_id, events)) pool.reset();
  }
  try {
    for (int i = 0; i < o.warmup; ++i) {
      engine.attention(tensors.q.dl(), tensors.k.dl(), tensors.v.dl(), tensors.out.dl(), options);
    }
    if (cuda && rt != nullptr && o.energy_window_s > 0) {
      measure_energy(engine, tensors, options, *rt, o.energy_window_s, m);
    } else if (cuda && o.energy_window_s > 0) {
      m.energy_note = "no CUDA runtime: no energy measurement";
    }
    if (rt != nullptr) rt->stream_synchronize(options.stream);
    for (int i = 0; i < o.repeat; ++i) {
      const bool timed = pool && detail::record_event(*rt, events.start, options.stream, events.device);
      Report r = engine.attention(tensors.q.dl(), tensors.k.dl(), tensors.v.dl(), tensors.out.dl(),
                                  options);
      if (timed && detail::record_event(*rt, events.end, options.stream, events.device)) {
        const double ms = detail::elapsed_ms(*rt, events);  // waits: the sync between repeats
        if (ms >= 0) {
          r.latency_s = ms * 1e-3;
          m.gpu_timed = true;
        }
      } else if (rt != nullptr) {
        rt->stream_synchronize(options.stream);
      }
      m.simulated = r.simulated;
      m.latencies_s.push_back(r.simulated && r.modelled_latency_s > 0 ? r.modelled_latency_s
                                                                      : r.latency_s);
      if (r.energy_j >= 0) energies.push_back(r.energy_j);
      m.detail = r.detail.data();
      m.reports.push_back(r);
    }
    m.ok = true;
    m.median_s = median(m.latencies_s);
    if (!m.energy_measured) m.energy_j = energies.empty() ? -1 : median(energies);
    if (m.energy_measured) {
      for (Report& r : m.reports) {
        r.energy_j = m.energy_j;
        r.energy_measured = true;
      }
    }
  } catch (const Error& e) {
    m.ok = false;
    m.failure = e.what();
  }
  if (pool) pool->give_back(events);
  return m;
}

}  // namespace pfa::cli

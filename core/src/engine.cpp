#include <pfa/engine.h>

#include "circuit_breaker.h"
#include "cuda_events.h"
#include "output_check.h"
#include "validate.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace pfa {

namespace {

int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Appends "name: message; " to a fixed buffer, truncating quietly.
void append_failure(char* buffer, size_t capacity, size_t& used, const std::string& name,
                    const char* message) {
  if (used + 1 >= capacity) return;
  const int n = std::snprintf(buffer + used, capacity - used, "%s%s: %s", used ? "; " : "",
                              name.c_str(), message[0] ? message : "failed without a message");
  if (n > 0) used = std::min(capacity - 1, used + static_cast<size_t>(n));
}

// GPU timing of CUDA calls (cuda_events.h) sits between the engine and its observer: when a
// loaded plugin serves CUDA and the CUDA runtime can be opened, the engine's observer is wrapped
// in a GpuTimingObserver. PFA_GPU_TIMING=0 turns it off (host-side times are then recorded).
bool wants_gpu_timing(const PluginList& plugins) {
  if (const char* env = std::getenv("PFA_GPU_TIMING"); env != nullptr && env[0] == '0') return false;
  for (const auto& p : plugins) {
    if (p->serves_device_type(kDLCUDA)) return true;
  }
  return false;
}

detail::GpuTimingObserver* gpu_timing_of(const std::shared_ptr<ExecutionObserver>& observer) {
  return dynamic_cast<detail::GpuTimingObserver*>(observer.get());
}

}  // namespace

Engine::Engine(EngineOptions options) : options_(std::move(options)) {
  plugins_ = load_plugins(options_.plugins);
  if (plugins_.plugins.size() > kMaxBackends) {
    for (size_t i = kMaxBackends; i < plugins_.plugins.size(); ++i) {
      plugins_.errors.push_back({plugins_.plugins[i]->path(),
                                 fmt::format("more than {} plugins; '{}' was not kept",
                                             kMaxBackends, plugins_.plugins[i]->name())});
    }
    plugins_.plugins.resize(kMaxBackends);
  }
  router_ = options_.make_router ? options_.make_router(plugins_.plugins)
                                 : std::make_shared<EstimateRouter>(plugins_.plugins);
  breakers_ = std::make_unique<detail::CircuitBreaker[]>(std::max<size_t>(1, plugins_.plugins.size()));
  if (wants_gpu_timing(plugins_.plugins)) {
    if (const detail::CudaRuntime* rt = detail::cuda_runtime()) {
      auto timing = std::make_shared<detail::GpuTimingObserver>(*rt, options_.observer);
      timing->set_router(router_);
      options_.observer = std::move(timing);
    }
  }
}

Engine::~Engine() {
  // Deliver every execution still waiting for its GPU time, while router and plugins live.
  if (auto* timing = gpu_timing_of(options_.observer)) {
    timing->stop();
    timing->set_router(nullptr);
  }
  // The router may refer to the plugins; let it go first.
  router_.reset();
}

int Engine::index_of(std::string_view name) const noexcept {
  for (size_t i = 0; i < plugins_.plugins.size(); ++i) {
    if (plugins_.plugins[i]->name() == name) return static_cast<int>(i);
  }
  return -1;
}

const Plugin* Engine::find_plugin(std::string_view name) const noexcept {
  const int i = index_of(name);
  return i < 0 ? nullptr : plugins_.plugins[static_cast<size_t>(i)].get();
}

Problem Engine::describe(const DLTensor& q, const DLTensor& k, const DLTensor& v,
                         const DLTensor& out, const AttentionOptions& options) const {
  detail::ValidatedCall call;
  detail::validate_call(q, k, v, out, options, call);
  return call.problem;
}

Report Engine::attention(const DLTensor& q, const DLTensor& k, const DLTensor& v, DLTensor& out,
                         const AttentionOptions& options) {
  detail::ValidatedCall call;
  detail::validate_call(q, k, v, out, options, call);
  const Problem& problem = call.problem;
  const RoutingPolicy policy{options.objective, options.max_rel_error, options.what_if};

  Decision decision;
  if (!options.backend.empty()) {
    const int forced = index_of(options.backend);
    if (forced < 0) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("no backend named '{}' is loaded", options.backend));
    }
    const Plugin& plugin = *plugins_.plugins[static_cast<size_t>(forced)];
    char reason[512] = {0};
    if (!plugin.serves_device_type(problem.device_type)) {
      throw Error(ErrorCode::unsupported,
                  fmt::format("backend '{}' does not serve {} tensors", plugin.name(),
                              device_name(problem.device_type)));
    }
    if (ranks_of(problem) > 1 && !plugin.distributed()) {
      throw Error(ErrorCode::unsupported,
                  fmt::format("backend '{}' serves one device only; this problem is split over {} "
                              "ranks", plugin.name(), problem.ranks));
    }
    if (!plugin.supports(problem, reason, sizeof reason)) {
      throw Error(ErrorCode::unsupported,
                  fmt::format("backend '{}' does not serve {}: {}", plugin.name(),
                              to_string(problem), reason));
    }
    decision.order[0] = static_cast<uint16_t>(forced);
    decision.count = 1;
  } else {
    router_->choose(problem, policy, decision);
    if (decision.count == 0) {
      std::string reasons;
      for (const auto& c : router_->explain(problem, policy).candidates) {
        reasons += fmt::format("\n  {}: {}", c.backend, c.reason);
      }
      throw Error(ErrorCode::unsupported,
                  fmt::format("no loaded backend serves {}{}", to_string(problem),
                              plugins_.plugins.empty() ? " (no plugins are loaded)" : reasons));
    }
  }

  pfa_run_args args{};
  args.struct_size = sizeof args;
  args.problem = &problem;
  args.q = &call.q.tensor;
  args.k = &call.k.tensor;
  args.v = &call.v.tensor;
  args.out = &call.out.tensor;
  args.lse = call.has_lse ? &call.lse.tensor : nullptr;
  args.stream = options.stream;
  args.communicator = options.communicator;
  // Every rank of a split problem must run the same backend: no fallback to a second candidate,
  // which the other ranks would not take.
  if (ranks_of(problem) > 1 && decision.count > 1) decision.count = 1;

  // CUDA calls are timed on the GPU by an event pair on the caller's stream around run(); the
  // resolver thread records them once the end event has completed (never on this thread).
  // The Report returned here then carries the host-side time of run() (the time to enqueue the
  // work, not to finish it); the router and the store get the GPU time.
  detail::GpuTimingObserver* timing =
      problem.device_type == kDLCUDA ? gpu_timing_of(options_.observer) : nullptr;

  char failures[2048] = {0};
  size_t failures_used = 0;
  int attempts = 0;
  const int64_t start_of_call = now_ns();
  for (uint16_t slot = 0; slot < decision.count; ++slot) {
    const uint16_t index = decision.order[slot];
    Plugin& plugin = *plugins_.plugins[index];
    detail::CircuitBreaker& breaker = breakers_[index];
    const bool forced = !options.backend.empty();
    if (!forced && !breaker.allow(start_of_call)) {
      append_failure(failures, sizeof failures, failures_used, plugin.name(),
                     "skipped: circuit breaker open after repeated failures");
      continue;
    }
    ++attempts;
    pfa_run_result result{};
    result.struct_size = sizeof result;
    result.energy_j = -1;
    result.measured_rel_error = -1;
    char message[512] = {0};
    detail::EventPair events;
    bool gpu_timed = timing != nullptr && timing->begin(problem.device_id, args.stream, events);
    const int64_t t0 = now_ns();
    pfa_status status = plugin.run(args, result, message, sizeof message);
    const int64_t t1 = now_ns();
    if (gpu_timed) gpu_timed = timing->end(args.stream, events);
    if (status == PFA_STATUS_OK && options_.check_outputs &&
        detail::has_non_finite_output(call.out.tensor, problem)) {
      status = PFA_STATUS_INTERNAL;
      std::snprintf(message, sizeof message, "returned NaN or infinity in its output");
    }

    Report report;
    report.backend = plugin.name();
    report.latency_s = static_cast<double>(t1 - t0) * 1e-9;
    report.modelled_latency_s = result.modelled_latency_s;
    report.energy_j = result.energy_j;
    report.energy_measured = result.energy_measured != 0;
    report.simulated = plugin.simulated();
    report.approximate = plugin.approximate();
    report.error_estimate = result.error_estimate;
    report.measured_rel_error = result.measured_rel_error;
    report.explored = slot == 0 && decision.explored;
    report.attempts = attempts;
    std::memcpy(report.detail.data(), result.detail, sizeof result.detail);
    report.detail.back() = '\0';

    if (gpu_timed) {
      if (status == PFA_STATUS_OK &&
          timing->defer(Execution{problem, plugin, policy, status, "", report}, index, events)) {
        breaker.on_success();
        return report;
      }
      if (status != PFA_STATUS_OK) timing->cancel(events);
      // A full queue released the pair: the execution goes on below with its host-side time.
    }
    const Outcome outcome{index, status == PFA_STATUS_OK, report.latency_s, report.energy_j,
                          report.explored};
    router_->observe(problem, policy, outcome);
    if (options_.observer) {
      options_.observer->on_execution(
          Execution{problem, plugin, policy, status, status == PFA_STATUS_OK ? "" : message, report});
    }
    if (status == PFA_STATUS_OK) {
      breaker.on_success();
      return report;
    }
    append_failure(failures, sizeof failures, failures_used, plugin.name(), message);
    breaker.on_failure(t1, options_.breaker_failures,
                       static_cast<int64_t>(options_.breaker_cooldown_s * 1e9));
  }
  throw Error(ErrorCode::backend_failure,
              fmt::format("every backend tried for {} failed: {}", to_string(problem), failures));
}

}  // namespace pfa

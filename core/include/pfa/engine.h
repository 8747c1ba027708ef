// pfa::Engine: validates an attention call, routes it to a backend plugin, runs it, falls back on
// failure, and reports what happened.
#pragma once

#include <pfa/error.h>
#include <pfa/options.h>
#include <pfa/plugin_loader.h>
#include <pfa/problem.h>
#include <pfa/report.h>
#include <pfa/router.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

namespace pfa {

namespace detail {
class CircuitBreaker;
}

// One finished execution, as the engine hands it to an observer (the execution store).
struct Execution {
  const Problem& problem;
  const Plugin& plugin;
  const RoutingPolicy& policy;
  pfa_status status;
  const char* message;  // empty on success
  const Report& report;
};

// Receives every execution. Called on the caller's thread right after the run, except for CUDA
// calls timed on the GPU (the default where the CUDA runtime loads; PFA_GPU_TIMING=0 turns it
// off), which arrive from the engine's timing thread once their end event has completed. Must be
// quick, thread-safe and must not throw (the store only enqueues).
class ExecutionObserver {
 public:
  virtual ~ExecutionObserver() = default;
  virtual void on_execution(const Execution& execution) noexcept = 0;
};

struct EngineOptions {
  PluginSearch plugins;
  // Builds the router once the plugins are loaded; null means the estimate-based router.
  std::function<std::shared_ptr<Router>(const PluginList&)> make_router;
  std::shared_ptr<ExecutionObserver> observer;
  // Circuit breaker: after this many consecutive failures a backend is skipped for the cooldown;
  // then one call probes it and either closes the breaker or opens it again.
  int breaker_failures = 3;
  double breaker_cooldown_s = 30.0;
  // Scan sampled rows of every CPU output for NaN or infinity and treat a hit as a failure of that
  // backend (the next candidate then runs). Costs a pass over at most 64 rows per call.
  bool check_outputs = false;
};

class Engine {
 public:
  explicit Engine(EngineOptions options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Computes attention of q, k, v into out (see AttentionOptions for layouts). Throws pfa::Error:
  // invalid_argument (nothing written), unsupported (no backend serves it), backend_failure (every
  // candidate failed; the message lists each failure).
  Report attention(const DLTensor& q, const DLTensor& k, const DLTensor& v, DLTensor& out,
                   const AttentionOptions& options = {});

  // Validates the call and returns the problem it describes, without running anything.
  Problem describe(const DLTensor& q, const DLTensor& k, const DLTensor& v, const DLTensor& out,
                   const AttentionOptions& options = {}) const;

  const PluginList& plugins() const noexcept { return plugins_.plugins; }
  const std::vector<PluginLoadError>& load_errors() const noexcept { return plugins_.errors; }
  const Plugin* find_plugin(std::string_view name) const noexcept;
  Router& router() noexcept { return *router_; }
  Explanation explain(const Problem& problem, const RoutingPolicy& policy) {
    return router_->explain(problem, policy);
  }

 private:
  int index_of(std::string_view name) const noexcept;

  EngineOptions options_;
  PluginSet plugins_;
  std::shared_ptr<Router> router_;
  std::unique_ptr<detail::CircuitBreaker[]> breakers_;
};

}  // namespace pfa

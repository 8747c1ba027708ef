// The router's interface: given a problem, which backends to try, best first. The engine holds
// one Router; the estimate-based one serves until a learned one replaces it.
#pragma once

#include <pfa/options.h>
#include <pfa/plugin.h>
#include <pfa/problem.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pfa {

inline constexpr size_t kMaxBackends = 32;

struct RoutingPolicy {
  Objective objective = Objective::latency;
  double max_rel_error = 0.0;
  bool what_if = false;
};

// Backends to try for one call, as indexes into the engine's plugin list, best first. Fixed-size so
// that routing a call allocates nothing.
struct Decision {
  std::array<uint16_t, kMaxBackends> order{};
  uint16_t count = 0;
  bool explored = false;  // order[0] was picked to measure it, not because it predicted best
};

// Why each backend was or was not a candidate, and what the router predicted: for humans.
struct CandidateExplanation {
  std::string backend;
  bool eligible = false;
  std::string reason;           // why it was excluded, or what the cost is based on
  double predicted_cost = 0;    // in the objective's unit (seconds, joules, joule-seconds)
  pfa_estimate estimate{};      // the plugin's own prior
};

struct Explanation {
  std::string router;                 // which router answered
  std::string chosen;                 // empty when nothing is eligible
  std::vector<CandidateExplanation> candidates;  // chosen first, then eligible by cost, then excluded
};

// What happened when a backend ran; the router may learn from it.
struct Outcome {
  uint16_t backend = 0;  // index into the plugin list
  bool ok = false;
  double latency_s = 0;
  double energy_j = -1;
  bool explored = false;
};

using PluginList = std::vector<std::unique_ptr<Plugin>>;

class Router {
 public:
  virtual ~Router() = default;
  virtual std::string_view name() const noexcept = 0;
  // Called on every attention call: must not allocate, lock for long, log or do I/O.
  virtual void choose(const Problem& problem, const RoutingPolicy& policy,
                      Decision& decision) noexcept = 0;
  virtual Explanation explain(const Problem& problem, const RoutingPolicy& policy) = 0;
  virtual void observe(const Problem& problem, const RoutingPolicy& policy,
                       const Outcome& outcome) noexcept {
    (void)problem, (void)policy, (void)outcome;
  }
};

// Whether a backend may be considered for a problem under a policy: it serves the device, says yes
// to the problem, meets the accuracy budget, and is real unless what-if routing is on.
// `reason` (if given) receives why not.
bool eligible(const Plugin& plugin, const Problem& problem, const RoutingPolicy& policy,
              char* reason, size_t capacity) noexcept;

// The estimate's cost in the objective's unit. Where a plugin cannot estimate energy, energy is
// taken as latency times a nominal power so that such plugins stay comparable.
double objective_cost(const pfa_estimate& estimate, Objective objective) noexcept;

// Cold-start routing: ranks eligible backends by their plugins' analytic estimates.
class EstimateRouter final : public Router {
 public:
  explicit EstimateRouter(const PluginList& plugins) : plugins_(plugins) {}
  std::string_view name() const noexcept override { return "estimate"; }
  void choose(const Problem& problem, const RoutingPolicy& policy,
              Decision& decision) noexcept override;
  Explanation explain(const Problem& problem, const RoutingPolicy& policy) override;

 private:
  const PluginList& plugins_;
};

}  // namespace pfa

#include <pfa/router.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace pfa {

namespace {
// Power assumed for a backend that cannot estimate its energy (a loaded CPU socket or a GPU at
// moderate load), so energy-minded routing can still rank it.
constexpr double kNominalPowerW = 100.0;
}  // namespace

bool eligible(const Plugin& plugin, const Problem& problem, const RoutingPolicy& policy,
              char* reason, size_t capacity) noexcept {
  auto say = [&](const char* text) {
    if (reason && capacity) std::snprintf(reason, capacity, "%s", text);
    return false;
  };
  if (!plugin.serves_device_type(problem.device_type)) {
    return say("does not serve this device type");
  }
  if (ranks_of(problem) > 1 && !plugin.distributed()) {
    return say("serves one device only; this problem is split over several");
  }
  if (plugin.simulated() && !policy.what_if) {
    return say("simulated backend: competes only in what-if routing");
  }
  if (!plugin.supports(problem, reason, capacity)) {
    if (reason && capacity && reason[0] == '\0') say("the plugin declined without a reason");
    return false;
  }
  if (plugin.approximate()) {
    // A budget of 0 means exact backends only, even where an approximate one expects no error
    // (a spectral backend keeping every mode is exact in theory, not in its rounding).
    if (!(policy.max_rel_error > 0)) {
      return say("approximate backend: the accuracy budget 0 admits exact backends only");
    }
    const pfa_estimate e = plugin.estimate(problem);
    if (!(e.rel_error <= policy.max_rel_error)) {
      if (reason && capacity) {
        std::snprintf(reason, capacity,
                      "approximate: expected relative error %.3g exceeds the budget %.3g",
                      e.rel_error, policy.max_rel_error);
      }
      return false;
    }
  }
  return true;
}

double objective_cost(const pfa_estimate& e, Objective objective) noexcept {
  const double energy = e.energy_j >= 0 ? e.energy_j : e.latency_s * kNominalPowerW;
  switch (objective) {
    case Objective::latency: return e.latency_s;
    case Objective::energy: return energy;
    case Objective::energy_delay: return energy * e.latency_s;
  }
  return e.latency_s;
}

void EstimateRouter::choose(const Problem& problem, const RoutingPolicy& policy,
                            Decision& decision) noexcept {
  std::array<double, kMaxBackends> cost{};
  decision.count = 0;
  decision.explored = false;
  const size_t n = std::min(plugins_.size(), kMaxBackends);
  for (size_t i = 0; i < n; ++i) {
    if (!eligible(*plugins_[i], problem, policy, nullptr, 0)) continue;
    cost[i] = objective_cost(plugins_[i]->estimate(problem), policy.objective);
    decision.order[decision.count++] = static_cast<uint16_t>(i);
  }
  // Ties go to the earlier plugin (a stable sort) so that one problem always gets one backend.
  std::stable_sort(decision.order.begin(), decision.order.begin() + decision.count,
                   [&](uint16_t a, uint16_t b) { return cost[a] < cost[b]; });
}

Explanation EstimateRouter::explain(const Problem& problem, const RoutingPolicy& policy) {
  Explanation out;
  out.router = std::string(name());
  std::vector<CandidateExplanation> eligible_ones, excluded;
  for (const auto& plugin : plugins_) {
    CandidateExplanation c;
    c.backend = plugin->name();
    c.estimate = plugin->estimate(problem);
    char reason[512] = {0};
    c.eligible = eligible(*plugin, problem, policy, reason, sizeof reason);
    if (c.eligible) {
      c.predicted_cost = objective_cost(c.estimate, policy.objective);
      c.reason = "plugin estimate";
      eligible_ones.push_back(std::move(c));
    } else {
      c.reason = reason;
      c.predicted_cost = std::numeric_limits<double>::infinity();
      excluded.push_back(std::move(c));
    }
  }
  std::stable_sort(eligible_ones.begin(), eligible_ones.end(),
                   [](const auto& a, const auto& b) { return a.predicted_cost < b.predicted_cost; });
  if (!eligible_ones.empty()) out.chosen = eligible_ones.front().backend;
  out.candidates = std::move(eligible_ones);
  for (auto& c : excluded) out.candidates.push_back(std::move(c));
  return out;
}

}  // namespace pfa

#include <pfa/learner/routing_quality.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <vector>

namespace pfa::learner {

RoutingQuality evaluate_routing(
    const CostModel& model, std::span<const store::ExecutionRecord> records, double tie_band,
    const std::function<bool(const store::ExecutionRecord&)>& include) {
  struct Group {
    const store::ExecutionRecord* first = nullptr;
    std::map<std::string, std::vector<double>, std::less<>> costs;  // backend -> measured costs
  };
  const FeatureSpace& space = model.features();
  std::map<uint64_t, Group> groups;
  for (const auto& r : records) {
    if (include && !include(r)) continue;
    const double cost = record_cost(r, model.objective());
    if (!std::isfinite(cost)) continue;
    Group& g = groups[problem_hash(r.problem, store::text(r.device_class))];
    if (!g.first) g.first = &r;
    g.costs[std::string(store::text(r.backend))].push_back(cost);
  }

  RoutingQuality q;
  double log_sum = 0;
  q.worst_share_of_oracle = 1.0;
  for (auto& [key, g] : groups) {
    if (g.costs.size() < 2) continue;
    // A backend the model never saw is measured (it counts for the oracle) but never picked.
    std::vector<int> ids;
    std::vector<size_t> known;
    std::vector<double> measured;
    std::vector<std::string_view> names;
    for (auto& [name, costs] : g.costs) {
      std::sort(costs.begin(), costs.end());
      const size_t m = costs.size();
      const int b = space.backend_id(name);
      if (b >= 0) {
        ids.push_back(b);
        known.push_back(measured.size());
      }
      measured.push_back(m % 2 ? costs[m / 2] : 0.5 * (costs[m / 2 - 1] + costs[m / 2]));
      names.push_back(name);
    }
    if (ids.empty()) continue;
    std::vector<double> known_cost(ids.size());
    const int d = space.device_class_id(store::text(g.first->device_class));
    if (!model.predict(g.first->problem, d, ids, known_cost)) continue;
    std::vector<double> predicted(measured.size(), std::numeric_limits<double>::infinity());
    for (size_t j = 0; j < known.size(); ++j) predicted[known[j]] = known_cost[j];
    std::vector<uint16_t> order(measured.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<uint16_t>(i);
    rank_by_cost(order.data(), order.size(), predicted.data(), names.data(), tie_band);
    const double oracle = *std::min_element(measured.begin(), measured.end());
    const double share = oracle / measured[order[0]];
    log_sum += std::log(share);
    ++q.groups;
    if (share < q.worst_share_of_oracle || q.groups == 1) {
      q.worst_share_of_oracle = share;
      q.worst_problem = to_string(g.first->problem);
    }
  }
  if (q.groups == 0) {
    q.geomean_share_of_oracle = q.worst_share_of_oracle = std::numeric_limits<double>::quiet_NaN();
  } else {
    q.geomean_share_of_oracle = std::exp(log_sum / static_cast<double>(q.groups));
  }
  return q;
}

}  // namespace pfa::learner

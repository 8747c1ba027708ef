// How well a cost model routes measured problems: TenSet's top-1 score, the share of the oracle.
// For each problem (a group of records of one shape on one device class, with at least two
// backends measured), the model picks among the measured backends; its share is the best measured
// cost over the picked backend's measured cost (1 = picked the fastest). Repeats of a backend on a
// problem are summarised by their median.
#pragma once

#include <pfa/learner/cost_model.h>
#include <pfa/learner/ranking.h>
#include <pfa/store/execution_record.h>

#include <functional>
#include <span>
#include <string>

namespace pfa::learner {

struct RoutingQuality {
  size_t groups = 0;                  // problems with two or more backends measured
  double geomean_share_of_oracle = 0; // NaN without groups
  double worst_share_of_oracle = 0;
  std::string worst_problem;          // pfa::to_string of the worst group's problem
};

// Routes every group of `records` (those `include` accepts; default all) with `model`. A backend
// the model never saw still counts for the oracle but is never picked, so a model that does not
// know a fast backend scores lower than one that does.
RoutingQuality evaluate_routing(
    const CostModel& model, std::span<const store::ExecutionRecord> records,
    double tie_band = kDefaultTieBand,
    const std::function<bool(const store::ExecutionRecord&)>& include = {});

}  // namespace pfa::learner

// Gain importance of a cost model's features, read from the trees of its XGBoost JSON.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pfa::tune {

struct FeatureImportance {
  std::string feature;
  double gain = 0;        // mean loss reduction of the splits on this feature (XGBoost's "gain")
  double total_gain = 0;  // their sum ("total_gain")
  int splits = 0;         // how many splits use it ("weight")
};

// Every feature that at least one split uses, by gain, largest first. `names` maps split indexes
// to feature names. Throws pfa::Error(model) when the JSON has no readable trees.
std::vector<FeatureImportance> gain_importance(std::string_view model_json,
                                               const std::vector<std::string>& names);

}  // namespace pfa::tune

#include "feature_importance.h"

#include <pfa/error.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>

namespace pfa::tune {

std::vector<FeatureImportance> gain_importance(std::string_view model_json,
                                               const std::vector<std::string>& names) {
  // XGBoost's own definition: over every split node, loss_changes[i] is the gain of that split
  // on feature split_indices[i]; "gain" averages it per feature, "total_gain" sums it.
  std::map<size_t, FeatureImportance> by_feature;
  try {
    const auto json = nlohmann::json::parse(model_json);
    const auto& trees = json.at("learner").at("gradient_booster").at("model").at("trees");
    for (const auto& tree : trees) {
      const auto& left = tree.at("left_children");
      const auto& split = tree.at("split_indices");
      const auto& loss = tree.at("loss_changes");
      for (size_t i = 0; i < left.size() && i < split.size() && i < loss.size(); ++i) {
        if (left[i].get<int64_t>() < 0) continue;  // a leaf
        const auto f = split[i].get<size_t>();
        auto& row = by_feature[f];
        row.feature = f < names.size() ? names[f] : "f" + std::to_string(f);
        row.total_gain += loss[i].get<double>();
        ++row.splits;
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::model,
                std::string("cannot read the trees of the model JSON (") + e.what() +
                    "): retrain with `pfa-tune train`");
  }
  std::vector<FeatureImportance> out;
  for (auto& [index, row] : by_feature) {
    row.gain = row.total_gain / row.splits;
    out.push_back(row);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.gain != b.gain ? a.gain > b.gain : a.feature < b.feature;
  });
  return out;
}

}  // namespace pfa::tune

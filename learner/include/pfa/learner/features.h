// The cost model's input: one row of numbers per (problem, backend, device class), and its target,
// the objective's cost in log scale.
//
// One model for all backends, with the backend as a one-hot block, rather than one model per
// backend: the shape-to-cost structure (cost grows with FLOPs, small problems are overhead-bound)
// is shared, so a backend with few records borrows it from the others; one booster answers every
// candidate of a call in a single prediction; and a new backend needs no new model, only records.
// Device classes are one-hot for the same reason. A backend or device class unseen in training
// gets an all-zero block and is routed by its plugin's estimate instead (see CostModel::covers).
#pragma once

#include <pfa/options.h>
#include <pfa/problem.h>
#include <pfa/store/execution_record.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pfa::learner {

// Shape features every row starts with, in this order (names in shape_feature_names()).
inline constexpr size_t kShapeFeatures = 15;

// "log2_batch", "log2_heads_q", ...: kShapeFeatures names.
const char* const* shape_feature_names() noexcept;

// Writes the kShapeFeatures shape features of `problem` into `out`: sizes in log2, the GQA ratio,
// log2 of matrix FLOPs and of bytes moved, dtype, causal, want_lse, layout, device type, and log2
// of the ranks a split problem spans (its sizes are one rank's shard; its FLOPs one rank's share).
void shape_features(const Problem& problem, float* out) noexcept;

// The categorical vocabularies a model was trained with, and the full row layout:
// [shape features][device class one-hot][backend one-hot].
class FeatureSpace {
 public:
  FeatureSpace() = default;
  FeatureSpace(std::vector<std::string> backends, std::vector<std::string> device_classes);

  size_t width() const noexcept { return kShapeFeatures + device_classes_.size() + backends_.size(); }
  const std::vector<std::string>& backends() const noexcept { return backends_; }
  const std::vector<std::string>& device_classes() const noexcept { return device_classes_; }

  // -1 when the model never saw this backend.
  int backend_id(std::string_view name) const noexcept;
  // Exact match first, else the first trained class with the same family before ':' ("cuda"
  // matches "cuda:sm90"), else -1.
  int device_class_id(std::string_view device_class) const noexcept;

  // Fills `row` (width() floats). Negative ids leave their one-hot block all zero.
  void encode(const Problem& problem, int device_class_id, int backend_id, float* row) const noexcept;

  std::vector<std::string> feature_names() const;

 private:
  std::vector<std::string> backends_;
  std::vector<std::string> device_classes_;
};

// The objective's cost of a record (seconds, joules or joule-seconds, as pfa::objective_cost
// defines them); NaN when the record cannot teach it: a failed run, or no positive finite cost.
double record_cost(const store::ExecutionRecord& record, Objective objective) noexcept;

// A stable 64-bit key of (problem shape, device class) that is the same in every process and
// version: groups repeats of one problem for held-out splits, oracle evaluation and measurement
// counts. Ignores the softmax scale, which does not change cost.
uint64_t problem_hash(const Problem& problem, std::string_view device_class) noexcept;

}  // namespace pfa::learner

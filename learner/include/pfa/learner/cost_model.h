// CostModel: an XGBoost regression of log(objective cost per FLOP) on problem features, one booster for all
// backends (see features.h), saved in XGBoost's own JSON so that Python's xgboost opens it.
//
// pfa's own metadata (vocabularies, coverage, measurement counts) rides inside that JSON as the
// booster attribute "pfa_meta"; XGBoost and its Python package carry it along and ignore it.
//
// Prediction walks the trees itself (about 100x cheaper than an XGBoost call for a handful of rows,
// and read-only, so any number of threads may predict at once). XGBoost's own predictor remains for
// evaluation and as a fallback: a booster is not documented as safe to predict from several threads
// at once, and the proxy DMatrix that makes single-row prediction cheap is per-caller state, so a
// model keeps a few prediction lanes, each its own booster copy, proxy and buffers behind a mutex;
// a caller takes its thread's lane or any free one. Everything else is immutable.
#pragma once

#include <pfa/learner/features.h>
#include <pfa/options.h>
#include <pfa/store/execution_record.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pfa::learner {

struct FitOptions {
  Objective objective = Objective::latency;
  // Depth 6, eta 0.1, 200 rounds. Retrained on one quiet-machine store of
  // bench/router/router_quality.sh, depth 3 / 60 rounds routed exactly like "always cpu_flash"
  // (0.969-0.981) while depth 6 routed 0.988-1.000 over four evaluations. On two further fresh
  // benches both depths still picked cpu_flash everywhere (0.946, 0.949): the few short-query shapes
  // where LibTorch wins are too sparse and too noisy in 240 training shapes. See bench/NOTES.md.
  int rounds = 200;
  int max_depth = 6;
  double eta = 0.1;
  double min_child_weight = 1.0;
  // One thread by default: training runs beside the application's own work, and on a busy machine
  // OpenMP's spinning threads made small fits 10-100x slower. 0: XGBoost's default (all cores).
  int threads = 1;
  // Below this many successful runs of a backend on a device class, or outside the FLOPs range it
  // was measured on (plus a margin: 16x either way, as the per-FLOP target extrapolates well), the
  // router trusts the plugin's estimate instead of the model.
  int min_rows_per_backend = 8;
  double coverage_margin_log2 = 4.0;
  // Simulated backends' modelled costs are learnable too; they compete only in what-if routing.
  bool include_simulated = true;
  // XGBoost boosters kept for predict_xgboost and evaluation; predict() needs none.
  int prediction_lanes = 1;
};

// Where the model has seen a backend on a device class.
struct Coverage {
  int64_t rows = 0;
  float min_log2_flops = 0;
  float max_log2_flops = 0;
};

class CostModel {
 public:
  ~CostModel();
  CostModel(const CostModel&) = delete;
  CostModel& operator=(const CostModel&) = delete;

  // Fits on every successful run in `records` that `include` accepts (default: all); failed runs
  // teach nothing and are skipped. Every successful run, included or not, feeds the per-problem
  // measurement counts that the router's exploration reads, so held-out runs still count as
  // measured. Throws pfa::Error(model) when there is nothing to learn from.
  static std::shared_ptr<const CostModel> fit(
      std::span<const store::ExecutionRecord> records, const FitOptions& options,
      const std::function<bool(const store::ExecutionRecord&)>& include = {});

  // XGBoost JSON with pfa's metadata, as to_json() writes it. Throws pfa::Error(model) naming the
  // problem; a damaged tree ensemble is refused before XGBoost reads it.
  static std::shared_ptr<const CostModel> from_json(std::string_view json, int prediction_lanes = 1);
  static std::shared_ptr<const CostModel> load(const std::filesystem::path& path,
                                               int prediction_lanes = 1);
  std::string to_json() const;
  void save(const std::filesystem::path& path) const;  // throws pfa::Error(io)

  Objective objective() const noexcept { return objective_; }
  const FeatureSpace& features() const noexcept { return space_; }
  int64_t trained_rows() const noexcept { return trained_rows_; }  // successful runs fitted
  // Rows the booster saw: one per (problem, backend, device class), the median of its runs.
  int64_t fitted_groups() const noexcept { return fitted_groups_; }
  int min_rows_per_backend() const noexcept { return min_rows_; }

  // Whether the model has seen enough of this backend on this device class around this problem's
  // size to be trusted over the plugin's estimate; `why` (optional) says why not.
  bool covers(int backend_id, int device_class_id, const Problem& problem,
              const char** why = nullptr) const noexcept;
  const Coverage* coverage(int backend_id, int device_class_id) const noexcept;

  // Successful runs of backend `backend_id` on the problem with this problem_hash in the records
  // the model was built from.
  int measurements(uint64_t problem_hash, int backend_id) const noexcept;

  // Predicted cost (objective's unit) of each backend id on one problem, into `costs`. At most
  // kMaxBackends ids. Walks the model's trees directly (read from XGBoost's JSON, the same sums as
  // XGBoost's CPU predictor): under a microsecond, no allocation, no lock. Falls back to XGBoost
  // for a model without trees. Returns false (costs NaN) when XGBoost fails.
  bool predict(const Problem& problem, int device_class_id, std::span<const int> backend_ids,
               std::span<double> costs) const noexcept;

  // The same through XGBoost's own C API (PredictFromDense on a reused proxy DMatrix, per lane).
  // For checks and the benchmark's baseline; XGBoost allocates inside.
  bool predict_xgboost(const Problem& problem, int device_class_id,
                       std::span<const int> backend_ids, std::span<double> costs) const noexcept;

  // Whether predict() walks the trees itself (false: it calls XGBoost).
  bool native_inference() const noexcept { return !forest_.roots.empty(); }

  // Predicted log-cost of many rows of width features().width(); for evaluation. Throws.
  std::vector<float> predict_log(std::span<const float> rows) const;

  struct Lane;

 private:
  CostModel() = default;
  void make_lanes(const std::string& json, int count);
  void build_forest(std::string_view json);

  struct Node {
    int32_t left = -1, right = -1;  // tree-local indexes; -1 on a leaf
    uint32_t feature = 0;
    float value = 0;                // split condition, or the leaf's value
    bool default_left = false;      // where a missing value goes
  };
  struct Forest {
    std::vector<Node> nodes;
    std::vector<uint32_t> roots;    // index of each tree's first node
    float base_score = 0;
    float evaluate(const float* row) const noexcept;
  };

  Objective objective_ = Objective::latency;
  FeatureSpace space_;
  int64_t trained_rows_ = 0;
  int64_t fitted_groups_ = 0;
  int min_rows_ = 8;
  float margin_ = 4.0f;
  std::vector<Coverage> coverage_;  // [backend * device_classes + device_class]
  struct Count {
    uint64_t problem;
    int32_t backend;
    int32_t count;
  };
  std::vector<Count> counts_;  // sorted by (problem, backend)
  std::string json_;           // the model as saved
  std::vector<std::unique_ptr<Lane>> lanes_;
  Forest forest_;
};

}  // namespace pfa::learner

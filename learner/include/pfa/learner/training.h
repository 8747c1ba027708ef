// Training a cost model from execution records, with held-out quality.
//
// Records are split by problem (all runs of one shape on one device class fall on the same side),
// by a fixed hash, so the held-out problems are the same in every retrain and in every process:
// an old and a new model are then compared on problems neither was trained on, and the held-out
// score says how the model does on shapes it has not seen.
#pragma once

#include <pfa/router.h>

#include <pfa/learner/cost_model.h>
#include <pfa/learner/routing_quality.h>
#include <pfa/store/execution_record.h>

#include <memory>
#include <span>
#include <string>

namespace pfa::learner {

struct TrainOptions {
  FitOptions fit;
  // Share of problems held out for metrics; 0 trains on everything and reports no held-out scores.
  double holdout_fraction = 0.2;
  uint64_t split_salt = 0x7066615f73706c74ull;
  double tie_band = kDefaultTieBand;
  // Share of oracle over every backend, simulated and approximate ones included (what-if); by
  // default only exact, real backends count, as production routing picks only those.
  bool score_all_backends = false;
  // Records imported from another device's tuning database (RecordSource::imported) are left out
  // of fitting, measurement counts and scoring unless asked: another machine's costs must not
  // steer routing on this one.
  bool include_foreign = false;
  // Names of this machine's devices (ExecutionRecord::device_name). When set, runs recorded on any
  // other device are foreign too: an H200's runs in a store an H100 shares never steer the H100
  // unless include_foreign. Empty: no device filter (records of every device count).
  std::vector<std::string> devices;
};

struct ModelMetrics {
  Objective objective = Objective::latency;
  size_t records = 0;          // given
  size_t failed = 0;           // failed runs: skipped, nothing learned
  size_t foreign = 0;          // runs of other devices left out (imported, or recorded on a device
                               // this machine lacks; include_foreign off)
  size_t train_rows = 0;       // successful runs fitted
  size_t holdout_rows = 0;     // successful runs held out
  double holdout_rmse_log = 0; // RMSE of natural-log cost on held-out runs; NaN without any
  RoutingQuality holdout;      // share of oracle on held-out problems
  double seconds = 0;          // wall time of the whole training
  std::string to_json() const; // the store's metrics_json
};

struct TrainResult {
  std::shared_ptr<const CostModel> model;
  ModelMetrics metrics;
};

// The device names the plugins report for this machine (device 0 of every device type each one
// serves and finds here): the value of TrainOptions::devices for local training.
std::vector<std::string> local_device_names(const PluginList& plugins);

// Whether training may learn from the record: not an imported run, nor (when options.devices is
// set) a run of a device this machine does not have, unless include_foreign.
bool is_trainable_source(const store::ExecutionRecord& record, const TrainOptions& options) noexcept;

// True when the problem of `record` falls in the held-out part.
bool is_held_out(const store::ExecutionRecord& record, const TrainOptions& options) noexcept;

// Fits on the training problems, scores on the held-out ones. Throws pfa::Error(model) when there
// are fewer than two successful training runs.
TrainResult train(std::span<const store::ExecutionRecord> records, const TrainOptions& options = {});

// Whether a candidate model should replace the current one: both route the held-out problems of
// `records` (all problems when none is held out), and the candidate must reach at least the
// current model's geometric-mean share of the oracle, less `tolerance`.
struct ModelComparison {
  RoutingQuality current;    // groups == 0 when there is no current model
  RoutingQuality candidate;
  bool replace = false;
  std::string reason;        // one line for logs and `pfa-tune train`
};

ModelComparison compare_models(const CostModel* current, const CostModel& candidate,
                               std::span<const store::ExecutionRecord> records,
                               const TrainOptions& options, double tolerance = 0.0);

}  // namespace pfa::learner

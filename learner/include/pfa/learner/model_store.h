// Cost models in the execution store: training from its records, saving to its models table, and
// loading the active model. What `pfa-tune train` runs.
#pragma once

#include <pfa/learner/cost_model.h>
#include <pfa/learner/training.h>
#include <pfa/store/store.h>

#include <memory>
#include <string>

namespace pfa::learner {

// The models table's kind for an objective's cost model: "latency", "energy", "energy_delay".
std::string model_kind(Objective objective);

// The store's active model for the objective; null when it has none. Throws pfa::Error(model) when
// the stored model cannot be read.
std::shared_ptr<const CostModel> load_active_model(const store::Store& store, Objective objective);

struct StoreTrainOptions {
  TrainOptions train;
  // Activate the new model even when it routes the held-out problems worse than the active one.
  bool force = false;
  // Save a model that was not activated (inactive, for the record and a later activate_model).
  bool save_rejected = true;
};

struct StoreTrainResult {
  TrainResult trained;           // the model and its metrics (rows, seconds, held-out quality)
  ModelComparison comparison;    // against the model that was active
  int64_t model_id = 0;          // 0 when not saved
  bool activated = false;
  int64_t max_record_id = 0;     // the newest record trained on
};

// Reads every record, trains, compares with the active model, saves (metrics JSON includes the
// comparison) and activates the new model when it routes at least as well (or `force`), or when
// the active one cannot be read (damaged, or written by an older pfa). Throws
// pfa::Error(model) when the store holds too few successful runs, pfa::Error(store) on store errors.
StoreTrainResult train_from_store(store::Store& store, const StoreTrainOptions& options = {});

}  // namespace pfa::learner

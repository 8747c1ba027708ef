#include <pfa/error.h>
#include <pfa/learner/model_store.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace pfa::learner {

std::string model_kind(Objective objective) { return objective_name(objective); }

std::shared_ptr<const CostModel> load_active_model(const store::Store& store, Objective objective) {
  const auto record = store.active_model(model_kind(objective));
  if (!record) return nullptr;
  try {
    return CostModel::from_json(record->model_json);
  } catch (const Error& e) {
    throw Error(ErrorCode::model, fmt::format("the active {} model (id {}) in {} cannot be read: {}",
                                              record->kind, record->id, store.path().string(),
                                              e.what()));
  }
}

StoreTrainResult train_from_store(store::Store& store, const StoreTrainOptions& options) {
  StoreTrainResult out;
  const auto records = store.records();
  for (const auto& r : records) out.max_record_id = std::max(out.max_record_id, r.id);
  out.trained = train(records, options.train);
  const Objective objective = options.train.fit.objective;
  // An active model that cannot be read (damaged, or from an older pfa) routes nothing: the new
  // one replaces it, and the comparison says why.
  std::shared_ptr<const CostModel> current;
  std::string unreadable;
  try {
    current = load_active_model(store, objective);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::model) throw;
    unreadable = e.what();
  }
  out.comparison = compare_models(current.get(), *out.trained.model, records, options.train);
  if (!unreadable.empty()) {
    out.comparison.replace = true;
    out.comparison.reason = fmt::format("replaces a model that cannot be read: {}", unreadable);
  }
  out.activated = out.comparison.replace || options.force;
  if (!out.activated && !options.save_rejected) return out;

  auto metrics = nlohmann::json::parse(out.trained.metrics.to_json());
  metrics["activated"] = out.activated;
  metrics["comparison"] = out.comparison.reason;
  if (out.comparison.current.groups > 0) {
    metrics["previous_geomean_share_of_oracle"] = out.comparison.current.geomean_share_of_oracle;
  }
  store::ModelRecord m;
  m.kind = model_kind(objective);
  m.model_json = out.trained.model->to_json();
  m.metrics_json = metrics.dump();
  // Every successful run read (fitted or held out): the size the next retrain's 20% rule uses.
  m.trained_on_records =
      static_cast<int64_t>(out.trained.metrics.records - out.trained.metrics.failed);
  m.max_record_id = out.max_record_id;
  out.model_id = store.save_model(m, out.activated);
  return out;
}

}  // namespace pfa::learner

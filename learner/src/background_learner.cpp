#include <pfa/error.h>
#include <pfa/learner/background_learner.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace pfa::learner {

BackgroundLearner::BackgroundLearner(std::filesystem::path store_path, LearnedRouter& router,
                                     LearnerOptions options)
    : store_(store_path), router_(router), options_(std::move(options)) {
  if (!options_.on_model_error) {
    options_.on_model_error = [](const std::string& message) {
      std::fprintf(stderr, "pfa: %s\n", message.c_str());
    };
  }
  for (const Objective objective : options_.objectives) {
    Baseline b;
    LearnerStep ignored;
    try {
      adopt_active(b, objective, ignored);
    } catch (const Error& e) {
      // An unreadable model is replaced by the first retrain; routing uses estimates meanwhile.
      last_error_ = e.what();
    }
    baselines_.push_back(std::move(b));
  }
  swaps_ = 0;  // loading the store's models is not a swap
}

bool BackgroundLearner::adopt_active(Baseline& b, Objective objective, LearnerStep& step) {
  const auto record = store_.active_model(model_kind(objective));
  if (!record || record->id == b.model_id) return false;
  b.model_id = record->id;  // even if unreadable: do not retry the same bad model every poll
  try {
    b.model = CostModel::from_json(record->model_json);
  } catch (const Error& e) {
    const std::string message = fmt::format(
        "the store's active {} model (id {}) in {} cannot be read, so routing uses {} until a "
        "readable model is trained or activated (`pfa-tune train`): {}",
        model_kind(objective), record->id, store_.path().string(),
        b.model ? "the model it had" : "the plugins' estimates", e.what());
    options_.on_model_error(message);
    throw Error(ErrorCode::model, message);
  }
  b.trained_on = record->trained_on_records;
  b.max_record_id = record->max_record_id;
  router_.set_model(b.model);
  step.swapped = true;
  step.model_id = record->id;
  step.note = fmt::format("took over the store's active model {}", record->id);
  std::lock_guard lock(mutex_);
  ++swaps_;
  return true;
}

BackgroundLearner::~BackgroundLearner() { stop(); }

void BackgroundLearner::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void BackgroundLearner::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t BackgroundLearner::swaps() const {
  std::lock_guard lock(mutex_);
  return swaps_;
}

std::string BackgroundLearner::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

void BackgroundLearner::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    try {
      step();
    } catch (const std::exception& e) {
      lock.lock();
      last_error_ = e.what();
      lock.unlock();
    }
    lock.lock();
    wake_.wait_for(lock, options_.poll_interval, [this] { return stopping_; });
  }
}

std::vector<LearnerStep> BackgroundLearner::step() {
  std::lock_guard serial(step_mutex_);
  std::vector<LearnerStep> steps;
  for (size_t i = 0; i < options_.objectives.size(); ++i) steps.push_back(step_one(i));
  return steps;
}

LearnerStep BackgroundLearner::step_one(size_t index) {
  Baseline& b = baselines_[index];
  LearnerStep s;
  s.objective = options_.objectives[index];
  if (adopt_active(b, s.objective, s)) return s;
  store::RecordQuery query;
  query.since_id = b.max_record_id;
  query.ok_only = true;
  s.new_records = store_.count(query);
  const int64_t needed =
      b.model ? std::max(options_.min_new_records,
                         static_cast<int64_t>(std::ceil(options_.min_new_fraction *
                                                        static_cast<double>(b.trained_on))))
              : options_.min_records;
  if (s.new_records < needed) {
    s.note = fmt::format("{} new successful runs; retraining at {}", s.new_records, needed);
    return s;
  }

  const auto records = store_.records();
  int64_t max_id = 0, ok = 0;
  for (const auto& r : records) {
    max_id = std::max(max_id, r.id);
    ok += r.ok;
  }
  TrainOptions train_options = options_.train;
  train_options.fit.objective = s.objective;
  TrainResult trained = options_.trainer ? options_.trainer(records, train_options)
                                         : train(records, train_options);
  s.trained = true;
  s.metrics = trained.metrics;
  s.comparison = compare_models(b.model.get(), *trained.model, records, train_options,
                                options_.tolerance);
  s.note = s.comparison.reason;
  // Whatever the verdict, these records have been tried: the next retrain waits for 20% more.
  b.trained_on = ok;
  b.max_record_id = max_id;
  if (!s.comparison.replace) return s;

  auto metrics = nlohmann::json::parse(trained.metrics.to_json());
  metrics["activated"] = true;
  metrics["comparison"] = s.comparison.reason;
  metrics["trained_by"] = "background learner";
  store::ModelRecord m;
  m.kind = model_kind(s.objective);
  m.model_json = trained.model->to_json();
  m.metrics_json = metrics.dump();
  m.trained_on_records = ok;
  m.max_record_id = max_id;
  s.model_id = store_.save_model(m, true);
  b.model_id = s.model_id;
  router_.set_model(trained.model);
  b.model = std::move(trained.model);
  s.swapped = true;
  std::lock_guard lock(mutex_);
  ++swaps_;
  return s;
}

}  // namespace pfa::learner

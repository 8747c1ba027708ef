#include <pfa/error.h>
#include <pfa/learner/training.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <vector>

namespace pfa::learner {

namespace {

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

}  // namespace

std::string ModelMetrics::to_json() const {
  nlohmann::json j;
  j["objective"] = objective_name(objective);
  j["records"] = records;
  j["failed"] = failed;
  j["foreign"] = foreign;
  j["train_rows"] = train_rows;
  j["holdout_rows"] = holdout_rows;
  j["holdout_rmse_log"] = number(holdout_rmse_log);
  j["holdout_groups"] = holdout.groups;
  j["geomean_share_of_oracle"] = number(holdout.geomean_share_of_oracle);
  j["worst_share_of_oracle"] = number(holdout.worst_share_of_oracle);
  j["worst_problem"] = holdout.worst_problem;
  j["seconds"] = seconds;
  return j.dump();
}

namespace {

// Whether a record's backend counts in the share of oracle: by default only those production
// routing may pick (exact and real), so a simulated or approximate backend's cost cannot set the
// oracle.
bool scored(const store::ExecutionRecord& r, const TrainOptions& options) {
  return options.score_all_backends || (!r.simulated && !r.approximate);
}

// The records training may learn from; `storage` holds a filtered copy only when some are left out.
std::span<const store::ExecutionRecord> trainable(std::span<const store::ExecutionRecord> records,
                                                  const TrainOptions& options,
                                                  std::vector<store::ExecutionRecord>& storage) {
  size_t keep = 0;
  for (const auto& r : records) keep += is_trainable_source(r, options);
  if (keep == records.size()) return records;
  storage.reserve(keep);
  for (const auto& r : records) {
    if (is_trainable_source(r, options)) storage.push_back(r);
  }
  return storage;
}

}  // namespace

std::vector<std::string> local_device_names(const PluginList& plugins) {
  std::vector<std::string> names;
  for (const auto& p : plugins) {
    for (int32_t type = 0; type < 32; ++type) {
      if (!p->serves_device_type(type)) continue;
      try {
        const auto d = p->device_info(type, 0);
        if (!d.name.empty() && std::find(names.begin(), names.end(), d.name) == names.end()) {
          names.push_back(d.name);
        }
      } catch (const std::exception&) {
        // A device type the plugin serves but this machine lacks (a CUDA build without a GPU).
      }
    }
  }
  return names;
}

bool is_trainable_source(const store::ExecutionRecord& record, const TrainOptions& options) noexcept {
  if (options.include_foreign) return true;
  if (record.source == store::RecordSource::imported) return false;
  if (options.devices.empty()) return true;
  const std::string_view device = store::text(record.device_name);
  return std::find(options.devices.begin(), options.devices.end(), device) != options.devices.end();
}

bool is_held_out(const store::ExecutionRecord& record, const TrainOptions& options) noexcept {
  if (options.holdout_fraction <= 0) return false;
  uint64_t h = problem_hash(record.problem, store::text(record.device_class)) ^ options.split_salt;
  // splitmix64 finaliser: spreads the FNV hash's low bits.
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  h ^= h >> 31;
  return static_cast<double>(h >> 11) * 0x1.0p-53 < options.holdout_fraction;
}

TrainResult train(std::span<const store::ExecutionRecord> all_records, const TrainOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<store::ExecutionRecord> storage;
  const auto records = trainable(all_records, options, storage);
  TrainResult result;
  ModelMetrics& m = result.metrics;
  m.objective = options.fit.objective;
  m.records = records.size();
  m.foreign = all_records.size() - records.size();
  if (records.size() < 2 && m.foreign > 0) {
    throw Error(ErrorCode::model,
                fmt::format("cannot train from this store: {} of its {} records were measured on "
                            "devices this machine does not have (imported, or recorded on another "
                            "card); measure here with `pfa-tune bench`, or learn from them with "
                            "`pfa-tune train --allow-foreign`",
                            m.foreign, all_records.size()));
  }
  std::vector<char> held(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    if (!records[i].ok) ++m.failed;
    held[i] = is_held_out(records[i], options);
  }
  // The filters receive references into `records`: their index gives the split.
  auto index = [&](const store::ExecutionRecord& r) { return static_cast<size_t>(&r - records.data()); };
  auto in_fit = [&](const store::ExecutionRecord& r) { return !held[index(r)]; };
  auto in_holdout = [&](const store::ExecutionRecord& r) { return held[index(r)] != 0; };
  result.model = CostModel::fit(records, options.fit, in_fit);
  m.train_rows = static_cast<size_t>(result.model->trained_rows());

  // Held-out RMSE of log-cost, only over backends and device classes the model knows.
  const FeatureSpace& space = result.model->features();
  std::vector<float> rows;
  std::vector<double> truth;
  for (const auto& r : records) {
    if (!in_holdout(r)) continue;
    const double cost = record_cost(r, options.fit.objective);
    if (!std::isfinite(cost) || (r.simulated && !options.fit.include_simulated)) continue;
    const int b = space.backend_id(store::text(r.backend));
    const int d = space.device_class_id(store::text(r.device_class));
    if (b < 0 || d < 0) continue;
    rows.resize(rows.size() + space.width());
    space.encode(r.problem, d, b, &rows[rows.size() - space.width()]);
    truth.push_back(std::log(cost));
  }
  m.holdout_rows = truth.size();
  m.holdout_rmse_log = std::numeric_limits<double>::quiet_NaN();
  if (!truth.empty()) {
    const auto predicted = result.model->predict_log(rows);
    double sum = 0;
    for (size_t i = 0; i < truth.size(); ++i) {
      const double e = static_cast<double>(predicted[i]) - truth[i];
      sum += e * e;
    }
    m.holdout_rmse_log = std::sqrt(sum / static_cast<double>(truth.size()));
  }
  m.holdout = evaluate_routing(*result.model, records, options.tie_band,
                               [&](const store::ExecutionRecord& r) {
                                 return in_holdout(r) && scored(r, options);
                               });
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

ModelComparison compare_models(const CostModel* current, const CostModel& candidate,
                               std::span<const store::ExecutionRecord> all_records,
                               const TrainOptions& options, double tolerance) {
  std::vector<store::ExecutionRecord> storage;
  const auto records = trainable(all_records, options, storage);
  ModelComparison c;
  bool any_held_out = false;
  for (const auto& r : records) {
    if (is_held_out(r, options)) {
      any_held_out = true;
      break;
    }
  }
  const std::function<bool(const store::ExecutionRecord&)> filter =
      [&](const store::ExecutionRecord& r) {
        return (!any_held_out || is_held_out(r, options)) && scored(r, options);
      };
  c.candidate = evaluate_routing(candidate, records, options.tie_band, filter);
  if (!current) {
    c.replace = true;
    c.reason = "no current model";
    return c;
  }
  c.current = evaluate_routing(*current, records, options.tie_band, filter);
  if (c.current.groups == 0 || !(c.current.geomean_share_of_oracle > 0)) {
    c.replace = true;
    c.reason = "the current model routes none of the held-out problems";
  } else if (c.candidate.groups == 0) {
    c.replace = false;
    c.reason = "the candidate routes none of the held-out problems";
  } else {
    c.replace = c.candidate.geomean_share_of_oracle >=
                c.current.geomean_share_of_oracle - tolerance;
    c.reason = fmt::format("held-out share of oracle {:.4f} (candidate) vs {:.4f} (current) on {} "
                           "problems: {}",
                           c.candidate.geomean_share_of_oracle, c.current.geomean_share_of_oracle,
                           c.candidate.groups, c.replace ? "candidate routes at least as well"
                                                         : "candidate routes worse, kept the current");
  }
  return c;
}

}  // namespace pfa::learner

// pfa-tune train: retrains the routing model from the store, prints training size, time and
// held-out quality, and makes it the active model unless it routes held-out problems worse than
// the current one.
#include "context.h"

#include <pfa/learner/cost_model.h>
#include <pfa/learner/routing_quality.h>
#include <pfa/learner/training.h>
#include <pfa/store/store.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cmath>

namespace pfa::tune {

namespace {

struct TrainCommandOptions {
  std::string objective = "latency";
  double holdout = 0.2;
  bool force = false;
};

void run_train(const Context& context, const TrainCommandOptions& o) {
  const auto store = context.open_store();
  const auto records = store->records();
  if (records.empty()) {
    throw Error(ErrorCode::model,
                fmt::format("the store {} has no records; run `pfa-tune bench` first",
                            store->path().string()));
  }
  learner::TrainOptions options;
  options.fit.objective = parse_objective(o.objective);
  options.holdout_fraction = o.holdout;
  const learner::TrainResult result = learner::train(records, options);
  const auto& m = result.metrics;

  // Compare with the active model on the same held-out problems.
  const std::string kind = objective_name(options.fit.objective);
  std::optional<learner::RoutingQuality> old_quality;
  if (const auto active = store->active_model(kind)) {
    try {
      const auto old_model = learner::CostModel::from_json(active->model_json);
      old_quality = learner::evaluate_routing(
          *old_model, records, options.tie_band,
          [&](const store::ExecutionRecord& r) { return learner::is_held_out(r, options); });
    } catch (const Error&) {
      // An unreadable active model is replaced.
    }
  }
  const double new_share = m.holdout.geomean_share_of_oracle;
  const bool better_or_equal = !old_quality || std::isnan(old_quality->geomean_share_of_oracle) ||
                               !(new_share < old_quality->geomean_share_of_oracle);
  const bool activate = o.force || better_or_equal;
  store::ModelRecord model;
  model.kind = kind;
  model.model_json = result.model->to_json();
  model.metrics_json = m.to_json();
  model.trained_on_records = static_cast<int64_t>(records.size());
  model.max_record_id = store->max_id();
  const int64_t id = store->save_model(model, activate);

  if (context.json) {
    nlohmann::json out = nlohmann::json::parse(m.to_json());
    out["model_id"] = id;
    out["active"] = activate;
    out["store"] = store->path().string();
    if (old_quality) out["previous_geomean_share_of_oracle"] = old_quality->geomean_share_of_oracle;
    context.print_json(out);
    return;
  }
  fmt::print("trained model {} ({}) on {} records: {} runs fitted, {} held out, {} failed runs "
             "skipped, {:.2f} s\n", id, kind, m.records, m.train_rows, m.holdout_rows, m.failed,
             m.seconds);
  if (m.holdout.groups > 0) {
    fmt::print("held-out problems: {}  share of oracle: geomean {:.3f}, worst {:.3f} ({})\n",
               m.holdout.groups, m.holdout.geomean_share_of_oracle,
               m.holdout.worst_share_of_oracle, m.holdout.worst_problem);
    fmt::print("held-out RMSE of log cost: {:.3f}\n", m.holdout_rmse_log);
  } else {
    fmt::print("no held-out problem has two backends measured: no held-out quality yet\n");
  }
  if (old_quality) {
    fmt::print("previous active model on the same problems: geomean {:.3f}\n",
               old_quality->geomean_share_of_oracle);
  }
  fmt::print("{}\n", activate ? "now the active model" : "kept the previous model (the new one routes held-out problems worse; --force to activate)");
}

}  // namespace

void add_train_command(CLI::App& app, Context& context) {
  auto options = std::make_shared<TrainCommandOptions>();
  auto* cmd = app.add_subcommand(
      "train", "Retrain the routing model from the store; print training size, time and "
               "held-out quality.\nExample: pfa-tune train --store runs.db");
  cmd->add_option("--objective", options->objective, "latency, energy or energy_delay");
  cmd->add_option("--holdout", options->holdout, "share of problems held out (default 0.2)");
  cmd->add_flag("--force", options->force, "activate the new model even if it scores lower");
  cmd->callback([&context, options] { run_train(context, *options); });
}

}  // namespace pfa::tune

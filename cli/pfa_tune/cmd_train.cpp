// pfa-tune train: retrains the routing model from the store, prints training size, time and
// held-out quality, and makes it the active model unless it routes held-out problems worse than
// the current one.
#include "context.h"

#include <pfa/learner/model_store.h>
#include <pfa/store/store.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>


namespace pfa::tune {

namespace {

struct TrainCommandOptions {
  std::string objective = "latency";
  double holdout = 0.2;
  bool force = false;
  bool allow_foreign = false;
};

void run_train(const Context& context, const TrainCommandOptions& o) {
  const auto store = context.open_store();
  if (store->count() == 0) {
    throw Error(ErrorCode::model,
                fmt::format("the store {} has no records; run `pfa-tune bench` first",
                            store->path().string()));
  }
  learner::StoreTrainOptions options;
  options.train.fit.objective = parse_objective(o.objective);
  options.train.holdout_fraction = o.holdout;
  options.force = o.force;
  options.train.include_foreign = o.allow_foreign;
  if (!o.allow_foreign) options.train.devices = learner::local_device_names(context.make_engine()->plugins());
  const learner::StoreTrainResult result = learner::train_from_store(*store, options);
  const auto& m = result.trained.metrics;
  if (context.json) {
    nlohmann::json out = nlohmann::json::parse(m.to_json());
    out["model_id"] = result.model_id;
    out["active"] = result.activated;
    out["store"] = store->path().string();
    context.print_json(out);
    return;
  }
  fmt::print("trained model {} ({}) on {} records: {} runs fitted, {} held out, {} failed runs "
             "skipped, {:.2f} s\n", result.model_id, learner::model_kind(options.train.fit.objective),
             m.records, m.train_rows, m.holdout_rows, m.failed, m.seconds);
  if (m.foreign > 0) {
    fmt::print("left out {} runs of other devices, imported or recorded on a device this machine "
               "lacks (--allow-foreign to learn from them)\n",
               m.foreign);
  }
  if (m.holdout.groups > 0) {
    fmt::print("held-out problems: {}  share of oracle: geomean {:.3f}, worst {:.3f} ({})\n",
               m.holdout.groups, m.holdout.geomean_share_of_oracle,
               m.holdout.worst_share_of_oracle, m.holdout.worst_problem);
    fmt::print("held-out RMSE of log cost: {:.3f}\n", m.holdout_rmse_log);
  } else {
    fmt::print("no held-out problem has two backends measured: no held-out quality yet\n");
  }
  fmt::print("{}\n", result.activated ? "now the active model"
                                      : "kept the previous model (the new one routes held-out "
                                        "problems worse; --force to activate)");
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
  cmd->add_flag("--allow-foreign", options->allow_foreign,
                "also learn from imported runs of other devices (left out by default)");
  cmd->callback([&context, options] { run_train(context, *options); });
}

}  // namespace pfa::tune

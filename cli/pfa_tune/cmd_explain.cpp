// pfa-tune explain: why the router picks what it picks for one shape — the features as the model
// sees them, each candidate's predicted and measured cost, the model's feature importance, the
// stored runs nearest this shape, and why each excluded backend is out.
#include "context.h"
#include "feature_importance.h"

#include <pfa/learner/features.h>
#include <pfa/learner/learned_router.h>
#include <pfa/learner/model_store.h>
#include <pfa/problem.h>
#include <pfa/store/store.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

namespace pfa::tune {

namespace {

struct ExplainOptions {
  std::string shape;
  std::string objective = "latency";
  double max_error = 0.0;
  bool what_if = false;
  int nearest = 5;
  int top_features = 10;
};

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Runs of one backend on one shape: what a nearest-record row shows.
struct RecordGroup {
  Problem problem{};
  std::string backend;
  std::vector<double> costs;
  double distance = 0;
};

nlohmann::json nan_to_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

void run_explain(const Context& context, const ExplainOptions& o) {
  const Problem problem = parse_problem(o.shape);
  if (o.nearest < 0 || o.top_features < 0) {
    throw Error(ErrorCode::invalid_argument, "--nearest and --top-features take a count >= 0");
  }
  const RoutingPolicy policy{parse_objective(o.objective), o.max_error, o.what_if};
  const auto store = context.open_existing_store();
  const auto engine = context.make_engine(nullptr, /*learned=*/true);
  const Explanation e = engine->explain(problem, policy);
  const std::string device_class = learner::plugin_device_class(engine->plugins(), problem.device_type);
  std::shared_ptr<const learner::CostModel> model;
  try {
    model = learner::load_active_model(*store, policy.objective);
  } catch (const Error&) {
    // make_engine already said the model is unreadable; explain what routing does without it.
  }

  // The features as the model encodes this problem: the shape block and the device class block.
  // (The backend block is one-hot per candidate.)
  std::vector<std::pair<std::string, float>> features;
  {
    std::vector<float> shape(learner::kShapeFeatures);
    learner::shape_features(problem, shape.data());
    const char* const* names = learner::shape_feature_names();
    for (size_t i = 0; i < learner::kShapeFeatures; ++i) features.emplace_back(names[i], shape[i]);
    if (model) {
      const auto& space = model->features();
      const int dc = space.device_class_id(device_class);
      for (size_t i = 0; i < space.device_classes().size(); ++i) {
        features.emplace_back("device_class=" + space.device_classes()[i],
                              static_cast<int>(i) == dc ? 1.0f : 0.0f);
      }
    }
  }
  std::vector<FeatureImportance> importance;
  if (model) {
    importance = gain_importance(model->to_json(), model->features().feature_names());
    if (importance.size() > static_cast<size_t>(o.top_features)) importance.resize(o.top_features);
  }

  // One pass over the successful runs on this device class: measured medians of this exact shape
  // and the runs nearest it in the model's shape features.
  const uint64_t key = learner::problem_hash(problem, device_class);
  std::vector<float> here(learner::kShapeFeatures), there(learner::kShapeFeatures);
  learner::shape_features(problem, here.data());
  std::map<std::pair<uint64_t, std::string>, RecordGroup> groups;
  store->for_each_record({.ok_only = true}, [&](const store::ExecutionRecord& r) {
    if (store::text(r.device_class) != device_class) return;
    const double cost = learner::record_cost(r, policy.objective);
    if (!std::isfinite(cost)) return;
    const std::string backend(store::text(r.backend));
    auto& g = groups[{learner::problem_hash(r.problem, device_class), backend}];
    if (g.costs.empty()) {
      g.problem = r.problem;
      g.backend = backend;
      learner::shape_features(r.problem, there.data());
      double d2 = 0;
      for (size_t i = 0; i < learner::kShapeFeatures; ++i) d2 += (here[i] - there[i]) * (here[i] - there[i]);
      g.distance = std::sqrt(d2);
    }
    g.costs.push_back(cost);
  });
  std::map<std::string, std::pair<double, size_t>> measured;  // backend -> (median, runs)
  std::vector<const RecordGroup*> nearest;
  for (const auto& [k, g] : groups) {
    if (k.first == key) measured[g.backend] = {median(g.costs), g.costs.size()};
    nearest.push_back(&g);
  }
  std::sort(nearest.begin(), nearest.end(), [](const auto* a, const auto* b) {
    return a->distance != b->distance ? a->distance < b->distance : a->backend < b->backend;
  });
  if (nearest.size() > static_cast<size_t>(o.nearest)) nearest.resize(o.nearest);

  if (context.json) {
    nlohmann::json out = {{"shape", to_string(problem)},
                          {"objective", objective_name(policy.objective)},
                          {"device_class", device_class},
                          {"router", e.router},
                          {"decision", e.chosen.empty() ? nlohmann::json() : nlohmann::json(e.chosen)},
                          {"model_id", nullptr}};
    if (model) {
      if (auto active = store->active_model(learner::model_kind(policy.objective))) {
        out["model_id"] = active->id;
      }
    }
    out["pin"] = nullptr;
    for (const auto& pin : store->pins()) {
      if (store::pin_matches(pin.problem, problem)) out["pin"] = pin.backend;
    }
    out["features"] = nlohmann::json::array();
    for (const auto& [name, value] : features) out["features"].push_back({{"name", name}, {"value", value}});
    out["candidates"] = nlohmann::json::array();
    for (const auto& c : e.candidates) {
      nlohmann::json row = {{"backend", c.backend}, {"eligible", c.eligible}, {"reason", c.reason},
                            {"predicted_cost", nullptr}, {"measured_median", nullptr},
                            {"measured_runs", 0}};
      if (c.eligible) row["predicted_cost"] = nan_to_null(c.predicted_cost);
      if (auto it = measured.find(c.backend); it != measured.end()) {
        row["measured_median"] = nan_to_null(it->second.first);
        row["measured_runs"] = it->second.second;
      }
      out["candidates"].push_back(std::move(row));
    }
    out["feature_importance"] = nlohmann::json::array();
    for (const auto& f : importance) {
      out["feature_importance"].push_back(
          {{"feature", f.feature}, {"gain", f.gain}, {"total_gain", f.total_gain}, {"splits", f.splits}});
    }
    out["nearest_records"] = nlohmann::json::array();
    for (const auto* g : nearest) {
      out["nearest_records"].push_back({{"shape", to_string(g->problem)},
                                        {"backend", g->backend},
                                        {"distance", g->distance},
                                        {"runs", g->costs.size()},
                                        {"median_cost", median(g->costs)}});
    }
    context.print_json(out);
  } else {
    fmt::print("shape     {}\nobjective {} on {}\nrouter    {}\ndecision  {}\n", to_string(problem),
               objective_name(policy.objective), device_class, e.router,
               e.chosen.empty() ? "none: no backend can serve it" : e.chosen);
    fmt::print("\nfeatures as the model sees them\n");
    for (const auto& [name, value] : features) fmt::print("  {:<24} {:.4g}\n", name, value);
    fmt::print("\n{:<14} {:>12} {:>16}  {}\n", "backend", "predicted", "measured median",
               "basis / why excluded");
    for (const auto& c : e.candidates) {
      std::string m = "-";
      if (auto it = measured.find(c.backend); it != measured.end()) {
        m = fmt::format("{:.4g} ({}x)", it->second.first, it->second.second);
      }
      fmt::print("{:<14} {:>12} {:>16}  {}\n", c.backend,
                 c.eligible ? fmt::format("{:.4g}", c.predicted_cost) : "excluded", m, c.reason);
    }
    if (model) {
      fmt::print("\nfeature importance (gain)\n");
      for (const auto& f : importance) {
        fmt::print("  {:<24} {:>10.4g}  ({} splits)\n", f.feature, f.gain, f.splits);
      }
    } else {
      fmt::print("\nno active {} model: routing rests on the plugins' estimates "
                 "(`pfa-tune train` builds one)\n", objective_name(policy.objective));
    }
    fmt::print("\nnearest stored runs on {} (distance in the model's shape features)\n", device_class);
    if (nearest.empty()) fmt::print("  none recorded\n");
    for (const auto* g : nearest) {
      fmt::print("  {:6.3f}  {:<12} {:.4g} (median of {})  {}\n", g->distance, g->backend,
                 median(g->costs), g->costs.size(), to_string(g->problem));
    }
  }
  if (e.chosen.empty()) {
    throw Error(ErrorCode::unsupported, fmt::format("no backend serves {}", to_string(problem)));
  }
}

}  // namespace

void add_explain_command(CLI::App& app, Context& context) {
  auto options = std::make_shared<ExplainOptions>();
  auto* cmd = app.add_subcommand(
      "explain", "Explain the routing decision for one shape: the model's features, each "
                 "candidate's predicted and measured cost, feature importance, the nearest stored "
                 "runs, and why excluded backends are out.\nExample: pfa-tune explain --shape "
                 "\"batch=1,heads_q=8,seqlen_q=1024,head_dim=64,dtype=fp32,causal=1\"");
  cmd->add_option("--shape", options->shape, "the problem, key=value pairs")->required();
  cmd->add_option("--objective", options->objective, "latency, energy or energy_delay");
  cmd->add_option("--max-error", options->max_error,
                  "accuracy budget: largest relative error accepted (0: exact backends only)");
  cmd->add_flag("--what-if", options->what_if, "let simulated backends compete");
  cmd->add_option("--nearest", options->nearest, "how many nearest stored shapes to show (default 5)");
  cmd->add_option("--top-features", options->top_features,
                  "how many features to rank by importance (default 10)");
  cmd->callback([&context, options] { run_explain(context, *options); });
}

}  // namespace pfa::tune

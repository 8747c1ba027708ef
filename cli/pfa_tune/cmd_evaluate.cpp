// pfa-tune evaluate: for each shape, measures every eligible backend, and scores the router's
// choice against the fastest (the oracle) — TenSet's top-1 share of oracle — beside every fixed
// backend and the best fixed sequence-length threshold rule.
#include "../common/measure.h"
#include "../common/progress.h"
#include "context.h"
#include "gated_observer.h"
#include "shape_source.h"

#include <pfa/store/store_observer.h>

#include <CLI/CLI.hpp>
#include <stdlib.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <limits>
#include <map>
#include <random>
#include <set>

namespace pfa::tune {

namespace {

struct EvaluateOptions {
  ShapeSource shapes;
  int repeat = 5;
  int warmup = 1;
  std::string objective = "latency";
  double energy_ms = 0;
  int overhead_calls = 2000;
};

struct ShapeResult {
  Problem problem;
  std::map<std::string, double> cost;  // measured median per backend
  std::map<std::string, double> latency;  // measured median latency per backend
  std::map<std::string, double> energy;   // energy per call where measured (NVML)
  std::string chosen, oracle;
  double route_s = -1;  // the router's choose() per call, decision cache warm
  std::string skipped;  // why the shape was not measured (no CUDA device, ...)
};

// Mean time of the router's choose() for one problem over `calls` calls (after one untimed
// call, so a caching router answers from its cache as it does in steady state).
double time_routing(Router& router, const Problem& problem, const RoutingPolicy& policy,
                    int calls) {
  Decision decision;
  router.choose(problem, policy, decision);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) router.choose(problem, policy, decision);
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double>(t1 - t0).count() / std::max(1, calls);
}

struct Score {
  double geomean = std::numeric_limits<double>::quiet_NaN();
  double worst = std::numeric_limits<double>::quiet_NaN();
  std::string worst_shape;
  size_t served = 0;
};

// Scores a policy that picks one backend per shape; shapes where its pick was not measured count
// as unserved and are left out of the geometric mean.
template <class Pick>
Score score(const std::vector<ShapeResult>& shapes, Pick pick) {
  Score s;
  double log_sum = 0;
  s.worst = 1.0;
  for (const auto& r : shapes) {
    const auto it = r.cost.find(pick(r));
    if (it == r.cost.end() || r.oracle.empty()) continue;
    const double share = r.cost.at(r.oracle) / it->second;
    log_sum += std::log(share);
    ++s.served;
    if (share <= s.worst) s.worst = share, s.worst_shape = to_string(r.problem);
  }
  if (s.served) s.geomean = std::exp(log_sum / static_cast<double>(s.served));
  else s.worst = std::numeric_limits<double>::quiet_NaN();
  return s;
}

nlohmann::json to_json(const Score& s) {
  auto number = [](double x) { return std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x); };
  return {{"geomean_share_of_oracle", number(s.geomean)},
          {"worst_share_of_oracle", number(s.worst)},
          {"worst_shape", s.worst_shape},
          {"served", s.served}};
}

void run_evaluate(const Context& context, const EvaluateOptions& o) {
  const auto problems = o.shapes.problems();
  const RoutingPolicy policy{parse_objective(o.objective), 0.0, false};
  // Refuse a store this user may not write before measuring anything (the writer alone would
  // go on and count every record as failed, as an application's engine should).
  context.open_store();
  auto recorder = std::make_shared<store::StoreObserver>(context.resolved_store_path(),
                                                         store::AsyncWriterOptions{},
                                                         store::RecordSource::evaluate);
  auto gate = std::make_shared<GatedObserver>(recorder);
  // The command times every call itself (events between repeats on CUDA) and records those
  // figures: the engine's own deferred GPU timing would only add work to each measured call.
  setenv("PFA_GPU_TIMING", "0", /*overwrite=*/0);
  const auto engine = context.make_engine(gate, /*learned=*/true);
  std::mt19937_64 rng(std::random_device{}());
  std::vector<ShapeResult> results;
  std::set<std::string> backends;
  cli::Progress progress("evaluate", problems.size(), context.quiet || context.json);
  for (const auto& problem : problems) {
    ShapeResult r;
    r.problem = problem;
    r.chosen = engine->explain(problem, policy).chosen;
    if (o.overhead_calls > 0) {
      r.route_s = time_routing(engine->router(), problem, policy, o.overhead_calls);
    }
    std::unique_ptr<cli::ProblemTensors> owned;
    try {
      owned = std::make_unique<cli::ProblemTensors>(problem, rng);
    } catch (const Error& e) {
      r.skipped = e.what();
      progress.step(to_string(problem));
      results.push_back(std::move(r));
      continue;
    }
    cli::ProblemTensors& tensors = *owned;
    for (const auto& plugin : engine->plugins()) {
      if (!eligible(*plugin, problem, policy, nullptr, 0)) continue;
      cli::MeasureOptions mo;
      mo.warmup = o.warmup;
      mo.repeat = o.repeat;
      mo.energy_window_s = o.energy_ms * 1e-3;
      gate->open_for_failures();
      const auto m = cli::measure(*engine, tensors, plugin->name(), mo);
      gate->open(false);
      cli::record_measurement(*engine, tensors, m, *recorder);
      if (!m.ok) continue;
      const double cost = policy.objective == Objective::latency ? m.median_s
                          : policy.objective == Objective::energy
                              ? (m.energy_j >= 0 ? m.energy_j : m.median_s * 100.0)
                              : (m.energy_j >= 0 ? m.energy_j : m.median_s * 100.0) * m.median_s;
      r.cost[plugin->name()] = cost;
      r.latency[plugin->name()] = m.median_s;
      if (m.energy_measured) r.energy[plugin->name()] = m.energy_j;
      backends.insert(plugin->name());
      if (r.oracle.empty() || cost < r.cost[r.oracle]) r.oracle = plugin->name();
    }
    progress.step(to_string(problem));
    results.push_back(std::move(r));
  }
  progress.finish();
  recorder->writer().flush();

  const Score router = score(results, [](const ShapeResult& r) { return r.chosen; });
  std::map<std::string, Score> fixed;
  for (const auto& b : backends) fixed[b] = score(results, [&](const ShapeResult&) { return b; });
  // The best rule of the form "A up to T keys, B above", T over the lengths seen: an oracle-tuned
  // threshold, the strongest baseline of its kind.
  std::set<int64_t> lengths;
  for (const auto& r : results) lengths.insert(r.problem.seqlen_k);
  Score best_rule;
  std::string best_rule_text;
  for (const auto& a : backends)
    for (const auto& b : backends) {
      if (a == b) continue;
      for (int64_t t : lengths) {
        const Score s = score(results, [&](const ShapeResult& r) {
          return r.problem.seqlen_k <= t ? a : b;
        });
        if (s.served == results.size() && (std::isnan(best_rule.geomean) || s.geomean > best_rule.geomean)) {
          best_rule = s;
          best_rule_text = fmt::format("{} up to seqlen_k {}, {} above", a, t, b);
        }
      }
    }

  if (context.json) {
    nlohmann::json shapes = nlohmann::json::array();
    for (const auto& r : results) {
      nlohmann::json costs = nlohmann::json::object();
      for (const auto& [b, c] : r.cost) costs[b] = c;
      const auto chosen = r.cost.find(r.chosen);
      nlohmann::json latencies = nlohmann::json::object(), energies = nlohmann::json::object();
      for (const auto& [b, c] : r.latency) latencies[b] = c;
      for (const auto& [b, e] : r.energy) energies[b] = e;
      const auto chosen_latency = r.latency.find(r.chosen);
      nlohmann::json overhead = nullptr;
      if (r.route_s >= 0) {
        overhead = {{"route_s", r.route_s}};
        if (chosen_latency != r.latency.end() && chosen_latency->second > 0) {
          overhead["share_of_call"] = r.route_s / (r.route_s + chosen_latency->second);
        }
      }
      shapes.push_back({{"shape", to_string(r.problem)},
                        {"chosen", r.chosen},
                        {"oracle", r.oracle},
                        {"costs", costs},
                        {"latency_s", latencies},
                        {"energy_j", energies},
                        {"tokens", r.problem.batch * r.problem.seqlen_q},
                        {"routing_overhead", overhead},
                        {"skipped", r.skipped},
                        {"share_of_oracle", chosen == r.cost.end() || r.oracle.empty()
                                                ? nlohmann::json(nullptr)
                                                : nlohmann::json(r.cost.at(r.oracle) / chosen->second)}});
    }
    nlohmann::json out = to_json(router);
    out["objective"] = objective_name(policy.objective);
    out["router"] = engine->router().name();
    out["shapes"] = shapes;
    out["fixed_backends"] = nlohmann::json::object();
    for (const auto& [b, s] : fixed) out["fixed_backends"][b] = to_json(s);
    out["threshold_rule"] = to_json(best_rule);
    out["threshold_rule"]["rule"] = best_rule_text;
    context.print_json(out);
    return;
  }
  fmt::print("{:<100} {:<20} {:<20} {:>7} {:>9}\n", "shape", "router", "oracle", "share",
             "route us");
  for (const auto& r : results) {
    const auto chosen = r.cost.find(r.chosen);
    fmt::print("{:<100} {:<20} {:<20} {:>7} {:>9}{}\n", to_string(r.problem), r.chosen, r.oracle,
               chosen == r.cost.end() || r.oracle.empty()
                   ? "-" : fmt::format("{:.3f}", r.cost.at(r.oracle) / chosen->second),
               r.route_s >= 0 ? fmt::format("{:.2f}", r.route_s * 1e6) : "-",
               r.skipped.empty() ? "" : "  skipped: " + r.skipped);
  }
  fmt::print("\n{:<40} {:>10} {:>8} {:>8}\n", "policy", "geomean", "worst", "served");
  auto line = [&](const std::string& name, const Score& s) {
    fmt::print("{:<40} {:>10.3f} {:>8.3f} {:>5}/{}\n", name, s.geomean, s.worst, s.served,
               results.size());
  };
  line(fmt::format("router ({})", engine->router().name()), router);
  for (const auto& [b, s] : fixed) line("always " + b, s);
  if (!best_rule_text.empty()) line("best threshold rule", best_rule);
  if (!best_rule_text.empty()) fmt::print("  (the rule: {})\n", best_rule_text);
}

}  // namespace

void add_evaluate_command(CLI::App& app, Context& context) {
  auto options = std::make_shared<EvaluateOptions>();
  auto* cmd = app.add_subcommand(
      "evaluate", "Measure every backend on each shape and score the router's choice against the "
                  "fastest (share of oracle), beside each fixed backend and the best threshold "
                  "rule.\nExample: pfa-tune evaluate --shapes unseen.csv --json");
  options->shapes.add_options(*cmd);
  cmd->add_option("--repeat", options->repeat, "timed runs per backend and shape (default 5)");
  cmd->add_option("--warmup", options->warmup, "untimed runs first (default 1)");
  cmd->add_option("--objective", options->objective, "latency, energy or energy_delay");
  cmd->add_option("--energy-ms", options->energy_ms,
                  "CUDA: also measure energy per call from NVML's energy counter over at least "
                  "this many milliseconds of back-to-back calls (default 0: off)");
  cmd->add_option("--overhead-calls", options->overhead_calls,
                  "time the router's choice over this many calls per shape (default 2000; 0: off)");
  cmd->callback([&context, options] { run_evaluate(context, *options); });
}

}  // namespace pfa::tune

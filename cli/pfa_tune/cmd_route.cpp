// pfa-tune route: the decision for one shape, each candidate's predicted cost and where it comes
// from, and why excluded candidates were excluded.
#include "context.h"

#include <pfa/problem.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cmath>
#include <optional>
#include <tuple>

namespace pfa::tune {

namespace {

struct RouteOptions {
  std::string shape;
  std::string objective = "latency";
  double max_error = 0.0;
  bool what_if = false;
  int split_over = 1;
};

// The cheapest eligible candidate of an explanation: its name and predicted cost (infinity when
// nothing is eligible).
std::pair<std::string, double> best_of(const Explanation& e) {
  for (const auto& c : e.candidates) {
    if (c.eligible && c.backend == e.chosen) return {c.backend, c.predicted_cost};
  }
  return {"", INFINITY};
}

const char* unit_of(Objective objective) {
  switch (objective) {
    case Objective::latency: return "s";
    case Objective::energy: return "J";
    case Objective::energy_delay: return "J*s";
  }
  return "";
}

// Whether splitting the sequence over `ranks` devices pays: the best one-device choice for the
// whole problem against the best choice for one rank's shard of it, each as the router predicts.
struct SplitVerdict {
  Problem shard{};
  std::string one, split;
  double one_cost = INFINITY, split_cost = INFINITY;
  bool pays() const { return std::isfinite(split_cost) && !(one_cost <= split_cost); }
};

SplitVerdict judge_split(Engine& engine, const Problem& whole, const RoutingPolicy& policy,
                         int ranks) {
  if (ranks_of(whole) > 1) {
    throw Error(ErrorCode::invalid_argument,
                "--split-over takes the whole sequence's shape: leave ranks out of --shape");
  }
  if (whole.seqlen_q % (whole.causal ? 2 * ranks : ranks) != 0 || whole.seqlen_k % ranks != 0 ||
      (whole.causal && whole.seqlen_q != whole.seqlen_k)) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("seqlen {} does not split over {} ranks{}", whole.seqlen_q, ranks,
                            whole.causal ? " in mirrored chunks (causal needs equal lengths and a "
                                           "multiple of 2 x ranks)"
                                         : ""));
  }
  SplitVerdict v;
  v.shard = whole;
  v.shard.seqlen_q /= ranks;
  v.shard.seqlen_k /= ranks;
  v.shard.ranks = ranks;
  std::tie(v.one, v.one_cost) = best_of(engine.explain(whole, policy));
  std::tie(v.split, v.split_cost) = best_of(engine.explain(v.shard, policy));
  return v;
}

nlohmann::json split_json(const SplitVerdict& v, int ranks) {
  auto cost = [](double c) { return std::isfinite(c) ? nlohmann::json(c) : nlohmann::json(nullptr); };
  return {{"split_over", ranks},
          {"one_device", {{"backend", v.one}, {"predicted_cost", cost(v.one_cost)}}},
          {"split", {{"backend", v.split}, {"shape", to_string(v.shard)},
                     {"predicted_cost", cost(v.split_cost)}}},
          {"verdict", v.pays() ? "split" : "one device"}};
}

void print_split(const SplitVerdict& v, int ranks) {
  auto cost = [](double c) { return std::isfinite(c) ? fmt::format("{:.4g}", c) : std::string("-"); };
  fmt::print("\nsplit over {} devices (each rank: {})\n", ranks, to_string(v.shard));
  fmt::print("  one device  {:<12} {:>12}\n", v.one.empty() ? "none" : v.one, cost(v.one_cost));
  fmt::print("  split       {:<12} {:>12}\n", v.split.empty() ? "none" : v.split, cost(v.split_cost));
  fmt::print("verdict   {}{}\n", v.pays() ? "split" : "one device",
             std::isfinite(v.one_cost) && std::isfinite(v.split_cost)
                 ? fmt::format(" (predicted speed-up of splitting {:.2f}x)", v.one_cost / v.split_cost)
                 : "");
}

void run_route(const Context& context, const RouteOptions& o) {
  const Problem problem = parse_problem(o.shape);
  const RoutingPolicy policy{parse_objective(o.objective), o.max_error, o.what_if};
  const auto engine = context.make_engine(nullptr, /*learned=*/true);
  const Explanation e = engine->explain(problem, policy);
  std::optional<SplitVerdict> split;
  if (o.split_over > 1) split = judge_split(*engine, problem, policy, o.split_over);
  if (context.json) {
    nlohmann::json candidates = nlohmann::json::array();
    for (const auto& c : e.candidates) {
      nlohmann::json row = {{"backend", c.backend}, {"eligible", c.eligible}, {"reason", c.reason}};
      if (c.eligible) row["predicted_cost"] = c.predicted_cost;
      if (std::isfinite(c.estimate.latency_s)) row["estimate_latency_s"] = c.estimate.latency_s;
      candidates.push_back(std::move(row));
    }
    nlohmann::json doc = {{"shape", to_string(problem)},
                          {"objective", objective_name(policy.objective)},
                          {"router", e.router},
                          {"decision", e.chosen.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.chosen)},
                          {"candidates", candidates}};
    if (split) doc["split"] = split_json(*split, o.split_over);
    context.print_json(doc);
  } else {
    fmt::print("shape     {}\nobjective {} (max relative error {}, what-if {})\nrouter    {}\n",
               to_string(problem), objective_name(policy.objective), o.max_error,
               o.what_if ? "on" : "off", e.router);
    fmt::print("decision  {}\n\n", e.chosen.empty() ? "none: no backend can serve it" : e.chosen);
    fmt::print("{:<14} {:>16}  {}\n", "backend", fmt::format("predicted ({})", unit_of(policy.objective)),
               "basis / why excluded");
    for (const auto& c : e.candidates) {
      fmt::print("{:<14} {:>16}  {}\n", c.backend,
                 c.eligible ? fmt::format("{:.4g}", c.predicted_cost) : "excluded", c.reason);
    }
    if (split) print_split(*split, o.split_over);
  }
  if (e.chosen.empty()) {
    throw Error(ErrorCode::unsupported, fmt::format("no backend serves {}", to_string(problem)));
  }
}

}  // namespace

void add_route_command(CLI::App& app, Context& context) {
  auto options = std::make_shared<RouteOptions>();
  auto* cmd = app.add_subcommand(
      "route", "Show the routing decision for one shape, every candidate's predicted cost and "
               "why excluded ones are out.\nExample: pfa-tune route --shape \"batch=2,heads_q=16,"
               "heads_kv=16,seqlen_q=4096,seqlen_k=4096,head_dim=128,dtype=bf16,causal=1\"");
  cmd->add_option("--shape", options->shape, "the problem, key=value pairs")->required();
  cmd->add_option("--objective", options->objective, "latency, energy or energy_delay");
  cmd->add_option("--max-error", options->max_error,
                  "accuracy budget: largest relative error accepted (0: exact backends only)");
  cmd->add_flag("--what-if", options->what_if, "let simulated backends compete");
  cmd->add_option("--split-over", options->split_over,
                  "also compare the whole shape on one device with it split over N devices "
                  "(ring); --shape is then the whole sequence")
      ->check(CLI::Range(1, 4096));
  cmd->callback([&context, options] { run_route(context, *options); });
}

}  // namespace pfa::tune

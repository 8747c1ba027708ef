// pfa-tune route: the decision for one shape, each candidate's predicted cost and where it comes
// from, and why excluded candidates were excluded.
#include "context.h"

#include <pfa/problem.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cmath>

namespace pfa::tune {

namespace {

struct RouteOptions {
  std::string shape;
  std::string objective = "latency";
  double max_error = 0.0;
  bool what_if = false;
};

const char* unit_of(Objective objective) {
  switch (objective) {
    case Objective::latency: return "s";
    case Objective::energy: return "J";
    case Objective::energy_delay: return "J*s";
  }
  return "";
}

void run_route(const Context& context, const RouteOptions& o) {
  const Problem problem = parse_problem(o.shape);
  const RoutingPolicy policy{parse_objective(o.objective), o.max_error, o.what_if};
  const auto engine = context.make_engine(nullptr, /*learned=*/true);
  const Explanation e = engine->explain(problem, policy);
  if (context.json) {
    nlohmann::json candidates = nlohmann::json::array();
    for (const auto& c : e.candidates) {
      nlohmann::json row = {{"backend", c.backend}, {"eligible", c.eligible}, {"reason", c.reason}};
      if (c.eligible) row["predicted_cost"] = c.predicted_cost;
      if (std::isfinite(c.estimate.latency_s)) row["estimate_latency_s"] = c.estimate.latency_s;
      candidates.push_back(std::move(row));
    }
    context.print_json({{"shape", to_string(problem)},
                        {"objective", objective_name(policy.objective)},
                        {"router", e.router},
                        {"decision", e.chosen.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.chosen)},
                        {"candidates", candidates}});
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
  cmd->callback([&context, options] { run_route(context, *options); });
}

}  // namespace pfa::tune

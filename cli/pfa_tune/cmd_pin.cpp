// pfa-tune pin / unpin / pins: operator overrides kept in the store. The learned router sends a
// pinned shape to its backend while that backend is eligible; `route` and `explain` show it.
#include "context.h"

#include <pfa/problem.h>
#include <pfa/store/store.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace pfa::tune {

namespace {

struct PinOptions {
  std::string shape;
  std::string backend;
};

void run_pin(const Context& context, const PinOptions& o) {
  const Problem problem = parse_problem(o.shape);
  // Checked before the store is opened: a bad pin changes nothing.
  const auto engine = context.make_engine();
  const Plugin* plugin = engine->find_plugin(o.backend);
  if (plugin == nullptr) {
    std::string names;
    for (const auto& p : engine->plugins()) names += (names.empty() ? "" : ", ") + p->name();
    throw Error(ErrorCode::invalid_argument,
                fmt::format("no backend '{}' is loaded (loaded: {}): name one of them",
                            o.backend, names.empty() ? "none" : names));
  }
  std::string why;
  if (!plugin->supports(problem, &why)) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("{} does not serve {}: {}; pin a backend that does", o.backend,
                            to_string(problem), why));
  }
  const auto store = context.open_store();
  store->pin({.problem = problem, .backend = o.backend});
  if (context.json) {
    context.print_json({{"shape", to_string(problem)}, {"backend", o.backend}, {"pinned", true}});
  } else {
    fmt::print("pinned {} to {} in {}\n", to_string(problem), o.backend, store->path().string());
    if (plugin->approximate() || plugin->simulated()) {
      fmt::print("note: {} is {}: the pin applies only to calls whose policy admits it ({})\n",
                 o.backend, plugin->simulated() ? "simulated" : "approximate",
                 plugin->simulated() ? "what-if routing" : "an accuracy budget it meets");
    }
  }
}

void run_unpin(const Context& context, const std::string& shape) {
  const Problem problem = parse_problem(shape);
  const auto store = context.open_existing_store();
  if (!store->unpin(problem)) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("no pin for {} in {}: `pfa-tune pins` lists them", to_string(problem),
                            store->path().string()));
  }
  if (context.json) {
    context.print_json({{"shape", to_string(problem)}, {"pinned", false}});
  } else {
    fmt::print("unpinned {}\n", to_string(problem));
  }
}

void run_pins(const Context& context) {
  const auto store = context.open_existing_store();
  const auto pins = store->pins();
  if (context.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& p : pins) {
      out.push_back({{"shape", to_string(p.problem)}, {"backend", p.backend},
                     {"created_us", p.created_us}});
    }
    context.print_json({{"pins", out}});
    return;
  }
  if (pins.empty()) fmt::print("no pins in {}\n", store->path().string());
  for (const auto& p : pins) fmt::print("{:<14} {}\n", p.backend, to_string(p.problem));
}

}  // namespace

void add_pin_commands(CLI::App& app, Context& context) {
  auto options = std::make_shared<PinOptions>();
  auto* pin = app.add_subcommand(
      "pin", "Route one shape to one backend whenever that backend is eligible (an operator "
             "override kept in the store; layout, lse and scale do not matter).\nExample: "
             "pfa-tune pin --shape \"batch=1,heads_q=8,seqlen_q=2048,head_dim=128,dtype=bf16,"
             "causal=1\" --backend cpu_flash");
  pin->add_option("--shape", options->shape, "the problem, key=value pairs")->required();
  pin->add_option("--backend", options->backend, "the backend to pin it to")->required();
  pin->callback([&context, options] { run_pin(context, *options); });

  auto shape = std::make_shared<std::string>();
  auto* unpin = app.add_subcommand(
      "unpin", "Remove the pin of one shape: the model routes it again.\nExample: pfa-tune "
               "unpin --shape \"batch=1,heads_q=8,seqlen_q=2048,head_dim=128,dtype=bf16,causal=1\"");
  unpin->add_option("--shape", *shape, "the pinned problem, key=value pairs")->required();
  unpin->callback([&context, shape] { run_unpin(context, *shape); });

  auto* pins = app.add_subcommand("pins", "List the pins in the store.\nExample: pfa-tune pins --json");
  pins->callback([&context] { run_pins(context); });
}

}  // namespace pfa::tune

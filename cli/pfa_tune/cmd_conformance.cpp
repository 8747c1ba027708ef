// pfa-tune conformance: checks plugin files against the plugin ABI's contract (see
// cli/conformance/conformance.h), prints a pass/fail table or JSON, and exits 1 when a check fails.
#include "../conformance/conformance.h"
#include "context.h"

#include <pfa/error.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <memory>

namespace pfa::tune {

namespace {

struct ConformanceArgs {
  std::vector<std::string> files;
  conformance::Options options;
  bool strict = false;
};

void run_conformance(const Context& context, const ConformanceArgs& args) {
  std::vector<conformance::Report> reports;
  for (const auto& file : args.files) {
    if (!context.quiet && !context.json) fmt::print(stderr, "checking {} ...\n", file);
    reports.push_back(conformance::check_plugin(file, args.options));
  }
  size_t failed = 0;
  for (const auto& r : reports) failed += r.passed(args.strict) ? 0 : 1;

  if (context.json) {
    nlohmann::json out = {{"passed", failed == 0}, {"plugins", nlohmann::json::array()}};
    for (const auto& r : reports) {
      nlohmann::json checks = nlohmann::json::array();
      for (const auto& c : r.checks) {
        checks.push_back({{"check", c.name},
                          {"result", c.outcome == conformance::Outcome::fail
                                         ? "fail" : conformance::outcome_name(c.outcome)},
                          {"detail", c.detail},
                          {"seconds", c.seconds}});
      }
      out["plugins"].push_back({{"file", r.plugin_file.string()},
                                {"name", r.name},
                                {"version", r.version},
                                {"abi", r.abi},
                                {"seed", r.seed},
                                {"passed", r.passed(args.strict)},
                                {"checks", checks}});
    }
    context.print_json(out);
  } else {
    for (const auto& r : reports) {
      fmt::print("{} {} (ABI {})  {}  seed {}\n", r.name.empty() ? "(not loaded)" : r.name, r.version,
                 r.abi.empty() ? "?" : r.abi, r.plugin_file.string(), r.seed);
      fmt::print("  {:<28} {:<6} {:>7}  {}\n", "check", "result", "time", "detail");
      for (const auto& c : r.checks) {
        fmt::print("  {:<28} {:<6} {:>6.2f}s  {}\n", c.name, conformance::outcome_name(c.outcome),
                   c.seconds, c.detail);
      }
      fmt::print("  => {}\n\n", r.passed(args.strict) ? "PASS" : "FAIL");
    }
  }
  if (failed) {
    throw Error(ErrorCode::backend_failure,
                fmt::format("{} of {} plugins failed conformance (replay with --seed)", failed,
                            reports.size()));
  }
}

}  // namespace

void add_conformance_command(CLI::App& app, Context& context) {
  auto args = std::make_shared<ConformanceArgs>();
  auto* cmd = app.add_subcommand(
      "conformance",
      "Check plugin files against the plugin ABI's contract: load and ABI negotiation (an older "
      "host accepted, a newer major refused), a reason for every refusal, refused calls that leave "
      "the output alone, correctness against an fp64 reference on random problems the plugin "
      "serves, concurrent calls when it declares itself thread-safe. Exit status 1 when a check "
      "fails.\nExample: pfa-tune conformance ./pfa_plugin_mychip.so --cases 50");
  cmd->add_option("plugin", args->files, "plugin files (pfa_plugin_<name>.so)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--cases", args->options.cases, "random problems to check for correctness")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--threads", args->options.threads, "threads for the concurrency check")
      ->check(CLI::Range(2, 256));
  cmd->add_flag("--strict", args->strict,
                "fail on warnings too (rules that bind once the ABI grows; recommended for new plugins)");
  cmd->add_option("--seed", args->options.seed, "seed of the random problems (0: fresh)");
  cmd->callback([&context, args] { run_conformance(context, *args); });
}

}  // namespace pfa::tune

// pfa-tune: inspect, benchmark, train and explain pfa's routing.
//
// Exit status: 0 success; 1 the work failed (a backend, the store, the model); 2 bad input
// (unknown option, malformed shape, missing or malformed file); 3 `doctor` found a problem.
#include "context.h"

#include <pfa/error.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace pfa::tune { void add_conformance_command(CLI::App& app, Context& context); }
namespace pfa::tune { void add_calibrate_command(CLI::App& app, Context& context); }

int main(int argc, char** argv) {
  pfa::tune::Context context;
  CLI::App app{"pfa-tune: inspect, benchmark, train and explain pfa's attention routing"};
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--store", context.store_path,
                 "execution store file (default: $XDG_STATE_HOME/pfa/pfa.db or "
                 "~/.local/state/pfa/pfa.db)");
  app.add_flag("--json", context.json, "machine-readable JSON on stdout");
  app.add_flag("--quiet", context.quiet, "no progress output");
  app.add_option("--plugins", context.plugin_paths,
                 "extra plugin files or folders (besides those next to libpfa and in "
                 "PFA_PLUGIN_PATH)");
  pfa::tune::add_plugins_command(app, context);
  pfa::tune::add_bench_command(app, context);
  pfa::tune::add_train_command(app, context);
  pfa::tune::add_route_command(app, context);
  pfa::tune::add_evaluate_command(app, context);
  pfa::tune::add_stats_command(app, context);
  pfa::tune::add_conformance_command(app, context);
  pfa::tune::add_explain_command(app, context);
  pfa::tune::add_doctor_command(app, context);
  pfa::tune::add_transfer_commands(app, context);
  pfa::tune::add_pin_commands(app, context);
  pfa::tune::add_report_command(app, context);
  pfa::tune::add_calibrate_command(app, context);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const pfa::Error& e) {
    fmt::print(stderr, "pfa-tune: {}\n", e.what());
    const bool bad_input = e.code() == pfa::ErrorCode::invalid_argument ||
                           e.code() == pfa::ErrorCode::io;
    return bad_input ? 2 : 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "pfa-tune: {}\n", e.what());
    return 1;
  }
  return context.exit_code;
}

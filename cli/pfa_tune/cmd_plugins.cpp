// pfa-tune plugins: what loaded, what each backend is, and why the others did not load.
#include "context.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace pfa::tune {

void add_plugins_command(CLI::App& app, Context& context) {
  auto* cmd = app.add_subcommand(
      "plugins", "List backend plugins: name, version, ABI, devices, exact/approximate, "
                 "real/simulated, and the load error of plugins that failed.\n"
                 "Example: pfa-tune plugins --json");
  cmd->callback([&context] {
    const auto engine = context.make_engine();
    if (context.json) {
      nlohmann::json out = {{"plugins", nlohmann::json::array()}, {"errors", nlohmann::json::array()}};
      for (const auto& p : engine->plugins()) {
        out["plugins"].push_back({{"name", p->name()},
                                  {"version", p->version()},
                                  {"abi", fmt::format("{}.{}", p->abi_major(), p->abi_minor())},
                                  {"devices", p->device_types_text()},
                                  {"approximate", p->approximate()},
                                  {"simulated", p->simulated()},
                                  {"thread_safe", p->thread_safe()},
                                  {"description", p->description()},
                                  {"path", p->path().string()}});
      }
      for (const auto& e : engine->load_errors()) {
        out["errors"].push_back({{"path", e.path.string()}, {"error", e.message}});
      }
      context.print_json(out);
      return;
    }
    fmt::print("{:<14} {:<9} {:<5} {:<10} {:<12} {:<10} {}\n", "name", "version", "abi",
               "devices", "accuracy", "cost", "description");
    for (const auto& p : engine->plugins()) {
      fmt::print("{:<14} {:<9} {:<5} {:<10} {:<12} {:<10} {}\n", p->name(), p->version(),
                 fmt::format("{}.{}", p->abi_major(), p->abi_minor()), p->device_types_text(),
                 p->approximate() ? "approximate" : "exact",
                 p->simulated() ? "simulated" : "measured", p->description());
    }
    if (engine->plugins().empty()) fmt::print("(no plugins loaded)\n");
    for (const auto& e : engine->load_errors()) fmt::print("not loaded: {}\n", e.message);
  });
}

}  // namespace pfa::tune

// What every pfa-tune command shares: the global options and how to open the store and engine.
#pragma once

#include <pfa/engine.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace pfa::store {
class Store;
}

namespace pfa::tune {

struct Context {
  std::string store_path;                 // empty: the default store
  bool json = false;                      // machine-readable output on stdout
  bool quiet = false;                     // no progress on stderr
  std::vector<std::string> plugin_paths;  // extra plugin files or folders
  int exit_code = 0;                      // set by a command that succeeds with a finding (doctor)

  std::filesystem::path resolved_store_path() const;
  // Opens the store (creating it if missing); pfa::Error(store) with the path when it can't.
  std::unique_ptr<store::Store> open_store() const;
  // Opens a store that must already exist (read-mostly commands never create one);
  // pfa::Error(invalid_argument) naming the path when there is no file.
  std::unique_ptr<store::Store> open_existing_store() const;
  // An engine over the default plugin search plus --plugins; `observer` records executions;
  // `learned` routes with the store's active model when one exists.
  std::unique_ptr<Engine> make_engine(std::shared_ptr<ExecutionObserver> observer = nullptr,
                                      bool learned = false) const;
  // Prints `value` as JSON on stdout (one document per command).
  void print_json(const nlohmann::json& value) const;
};

// Each command adds itself to the app; its callback runs when the command is chosen.
void add_plugins_command(CLI::App& app, Context& context);
void add_bench_command(CLI::App& app, Context& context);
void add_train_command(CLI::App& app, Context& context);
void add_route_command(CLI::App& app, Context& context);
void add_evaluate_command(CLI::App& app, Context& context);
void add_stats_command(CLI::App& app, Context& context);
void add_explain_command(CLI::App& app, Context& context);
void add_doctor_command(CLI::App& app, Context& context);
void add_transfer_commands(CLI::App& app, Context& context);  // export, import, merge
void add_pin_commands(CLI::App& app, Context& context);       // pin, unpin, pins
void add_report_command(CLI::App& app, Context& context);

// Splits "a,b,c" into its non-empty parts.
std::vector<std::string> split_list(const std::string& text);

}  // namespace pfa::tune

#include "context.h"

#include <pfa/learner/learned_router.h>
#include <pfa/learner/model_store.h>
#include <pfa/store/store.h>

#include <fmt/format.h>

#include <iostream>
#include <sstream>

namespace pfa::tune {

std::filesystem::path Context::resolved_store_path() const {
  return store_path.empty() ? store::Store::default_path() : std::filesystem::path(store_path);
}

std::unique_ptr<store::Store> Context::open_store() const {
  try {
    return std::make_unique<store::Store>(resolved_store_path());
  } catch (const Error& e) {
    // A store that cannot be opened (not a pfa store, a newer schema, a folder, no such folder)
    // is the operator's input to fix: exit status 2, like any other bad argument.
    if (e.code() != ErrorCode::store) throw;
    throw Error(ErrorCode::invalid_argument, e.what());
  }
}

std::unique_ptr<store::Store> Context::open_existing_store() const {
  const auto path = resolved_store_path();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("no store at {}: name an existing one with --store, or record runs "
                            "first with `pfa-tune bench`", path.string()));
  }
  return open_store();
}

std::unique_ptr<Engine> Context::make_engine(std::shared_ptr<ExecutionObserver> observer,
                                             bool learned) const {
  EngineOptions options;
  if (learned) {
    // The store's active model for each objective (estimates where there is none) and its pins.
    std::vector<std::shared_ptr<const learner::CostModel>> models;
    const auto store = open_store();
    auto pins = store->pins();
    for (Objective objective : {Objective::latency, Objective::energy, Objective::energy_delay}) {
      try {
        if (auto model = learner::load_active_model(*store, objective)) models.push_back(model);
      } catch (const Error& e) {
        // Said once per command; what follows routes as if the store had no such model.
        fmt::print(stderr,
                   "pfa-tune: warning: {}. Until then, {} routing uses the plugins' estimates\n",
                   e.what(), objective_name(objective));
      }
    }
    options.make_router = [models, pins = std::move(pins)](const PluginList& plugins) {
      auto router = std::make_shared<learner::LearnedRouter>(plugins);
      for (const auto& model : models) router->set_model(model);
      router->set_pins(pins);
      return router;
    };
  }
  for (const auto& p : plugin_paths) options.plugins.paths.emplace_back(p);
  options.observer = std::move(observer);
  return std::make_unique<Engine>(std::move(options));
}

void Context::print_json(const nlohmann::json& value) const { std::cout << value.dump(2) << "\n"; }

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace pfa::tune

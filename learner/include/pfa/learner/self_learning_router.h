// The engine hook: a router that routes with the store's active cost models and keeps learning
// from the store while the application runs.
//
//   pfa::EngineOptions options;
//   options.observer = std::make_shared<pfa::store::StoreObserver>(store_path);
//   options.make_router = pfa::learner::self_learning_router(
//       {.store_path = store_path});
//   pfa::Engine engine(std::move(options));
#pragma once

#include <pfa/learner/background_learner.h>
#include <pfa/learner/learned_router.h>
#include <pfa/router.h>

#include <filesystem>
#include <functional>
#include <memory>

namespace pfa::learner {

struct SelfLearningOptions {
  std::filesystem::path store_path;  // empty: store::Store::default_path()
  LearnedRouterOptions router;
  LearnerOptions learner;
  bool learn_in_background = true;   // false: load the active models once, never retrain
};

// For EngineOptions::make_router. The router it builds loads the store's pins and active models, starts the
// background learner (if asked), and stops the learner before it goes away. Throws
// pfa::Error(store) when the store cannot be opened.
std::function<std::shared_ptr<Router>(const PluginList&)> self_learning_router(
    SelfLearningOptions options);

}  // namespace pfa::learner

#include <pfa/learner/self_learning_router.h>
#include <pfa/store/store.h>

namespace pfa::learner {

namespace {

class SelfLearningRouter final : public Router {
 public:
  SelfLearningRouter(const PluginList& plugins, SelfLearningOptions options)
      : router_(plugins, options.router) {
    const auto path =
        options.store_path.empty() ? store::Store::default_path() : options.store_path;
    {
      // The operator's pins as they are now (`pfa-tune pin` takes effect at the next start).
      const store::Store store(path);
      router_.set_pins(store.pins());
    }
    // Learn only from runs of this machine's devices unless the application asked otherwise.
    if (options.learner.train.devices.empty() && !options.learner.train.include_foreign) {
      options.learner.train.devices = local_device_names(plugins);
    }
    learner_ = std::make_unique<BackgroundLearner>(path, router_, std::move(options.learner));
    if (options.learn_in_background) learner_->start();
  }

  std::string_view name() const noexcept override { return router_.name(); }
  void choose(const Problem& problem, const RoutingPolicy& policy,
              Decision& decision) noexcept override {
    router_.choose(problem, policy, decision);
  }
  Explanation explain(const Problem& problem, const RoutingPolicy& policy) override {
    return router_.explain(problem, policy);
  }
  void observe(const Problem& problem, const RoutingPolicy& policy,
               const Outcome& outcome) noexcept override {
    router_.observe(problem, policy, outcome);
  }

 private:
  LearnedRouter router_;
  std::unique_ptr<BackgroundLearner> learner_;  // declared last: stops before the router goes
};

}  // namespace

std::function<std::shared_ptr<Router>(const PluginList&)> self_learning_router(
    SelfLearningOptions options) {
  return [options = std::move(options)](const PluginList& plugins) -> std::shared_ptr<Router> {
    return std::make_shared<SelfLearningRouter>(plugins, options);
  };
}

}  // namespace pfa::learner

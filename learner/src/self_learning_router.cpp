#include <pfa/learner/self_learning_router.h>
#include <pfa/store/store.h>
#include <pfa/store/store_observer.h>

namespace pfa::learner {

namespace {

class SelfLearningRouter final : public Router {
 public:
  SelfLearningRouter(const PluginList& plugins, SelfLearningOptions options)
      : router_(plugins, with_device_classes(plugins, options.router)) {
    const auto path =
        options.store_path.empty() ? store::Store::default_path() : options.store_path;
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
  static LearnedRouterOptions with_device_classes(const PluginList& plugins,
                                                  LearnedRouterOptions options) {
    if (!options.device_class) {
      options.device_class = [&plugins](int32_t type) { return plugin_device_class(plugins, type); };
    }
    return options;
  }

  LearnedRouter router_;
  std::unique_ptr<BackgroundLearner> learner_;  // declared last: stops before the router goes
};

}  // namespace

std::string plugin_device_class(const PluginList& plugins, int32_t dl_device_type) {
  for (const auto& plugin : plugins) {
    if (!plugin->serves_device_type(dl_device_type)) continue;
    // A plugin without such a device here (CUDA on a machine without a GPU) says "unknown".
    const DeviceDescription device = plugin->device_info(dl_device_type, 0);
    if (device.name != "unknown") return store::device_class(dl_device_type, device.detail);
  }
  return device_name(dl_device_type);
}

std::function<std::shared_ptr<Router>(const PluginList&)> self_learning_router(
    SelfLearningOptions options) {
  return [options = std::move(options)](const PluginList& plugins) -> std::shared_ptr<Router> {
    return std::make_shared<SelfLearningRouter>(plugins, options);
  };
}

}  // namespace pfa::learner

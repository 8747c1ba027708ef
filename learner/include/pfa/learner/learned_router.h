// LearnedRouter: routes each call by a cost model's predictions, cached per problem bucket, with
// the plugins' estimates where the model has not seen a backend or size region, and bounded
// exploration (exploration.h) so that backends the model undervalues still get measured.
//
// A call: look the bucket up in the decision cache (decision_cache.h; lock-free, no allocation);
// on a miss, ask every plugin whether it is eligible, predict each eligible backend's cost with the
// model in one XGBoost call (or take its estimate), rank them with ties inside the noise band
// broken by name (ranking.h), and cache the ranking. Then maybe explore.
//
// Models swap atomically while calls continue: each objective's model sits behind a shared_ptr
// that a miss copies under a short lock, and a generation counter bumped after the swap
// invalidates every cached decision; a hit touches neither.
#pragma once

#include <pfa/learner/cost_model.h>
#include <pfa/learner/decision_cache.h>
#include <pfa/learner/exploration.h>
#include <pfa/learner/ranking.h>
#include <pfa/router.h>
#include <pfa/store/pin.h>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace pfa::learner {

// The device class a model knows a device by, as the store records it ("cpu", "cuda:sm90").
// Called once per device type when the router is built.
using DeviceClassFn = std::function<std::string(int32_t dl_device_type)>;

// The device class the store records for a device type, asked of the first plugin that serves it
// (pfa::store::device_class of its device detail: "cpu", "cuda:sm90"); else pfa::device_name of the
// type, which still matches trained classes of its family (FeatureSpace::device_class_id).
std::string plugin_device_class(const PluginList& plugins, int32_t dl_device_type);

struct LearnedRouterOptions {
  ExplorationPolicy exploration;
  double tie_band = kDefaultTieBand;
  size_t cache_slots = 4096;
  // Default: plugin_device_class, the class the store records for the device.
  DeviceClassFn device_class;
};

struct RouterStats {
  uint64_t calls = 0;
  uint64_t misses = 0;        // decisions computed (model or estimates)
  uint64_t explored = 0;      // calls that ran a backend to measure it
  uint64_t model_failures = 0;  // predictions XGBoost refused (estimates used instead)
  uint64_t generation = 0;    // bumped at every model swap
};

class LearnedRouter final : public Router {
 public:
  // `plugins` must outlive the router (the engine guarantees it).
  explicit LearnedRouter(const PluginList& plugins, LearnedRouterOptions options = {});
  ~LearnedRouter() override;

  std::string_view name() const noexcept override { return "learned"; }
  void choose(const Problem& problem, const RoutingPolicy& policy,
              Decision& decision) noexcept override;
  Explanation explain(const Problem& problem, const RoutingPolicy& policy) override;
  void observe(const Problem& problem, const RoutingPolicy& policy,
               const Outcome& outcome) noexcept override;

  // Serves the model's objective from now on (null clears it: estimates only). Safe while calls
  // continue; every cached decision is invalidated.
  void set_model(std::shared_ptr<const CostModel> model);
  void clear_model(Objective objective);
  std::shared_ptr<const CostModel> model(Objective objective) const;

  // Operator overrides (the store's pins table): a problem matching a pin goes to the pinned
  // backend first, unexplored, while that backend is eligible; the ranking follows it as
  // fallbacks. Replaces the previous pins; safe while calls continue.
  void set_pins(std::span<const store::Pin> pins);

  RouterStats stats() const noexcept;
  const LearnedRouterOptions& options() const noexcept { return options_; }

 private:
  struct ModelState;
  struct Ranked;
  // Ranks the eligible backends (no exploration). Allocation-free but for XGBoost's own.
  void rank(const Problem& problem, const RoutingPolicy& policy, const ModelState* state,
            Ranked& out) noexcept;
  std::shared_ptr<const ModelState> state(Objective objective) const noexcept;
  uint64_t next_random() noexcept;
  void put_first(Decision& decision, uint16_t slot) noexcept;

  const PluginList& plugins_;
  LearnedRouterOptions options_;
  std::array<std::string_view, kMaxBackends> names_{};
  std::array<std::string, 32> device_classes_;  // per DLDeviceType
  // Read on cache misses only, under a lock held for a pointer copy. (libstdc++ 12's
  // std::atomic<shared_ptr> releases its internal lock with relaxed ordering after a load, which
  // ThreadSanitizer rightly flags.)
  mutable std::mutex models_mutex_;
  std::shared_ptr<const ModelState> models_[3];
  struct PinnedBackend {
    Problem problem;
    std::string backend;
    int plugin = -1;  // index into the plugin list; -1 when no such plugin is loaded
  };
  std::shared_ptr<const std::vector<PinnedBackend>> pins_;  // under models_mutex_
  const PinnedBackend* find_pin(const std::vector<PinnedBackend>* pins,
                                const Problem& problem) const noexcept;
  std::shared_ptr<const std::vector<PinnedBackend>> pins_snapshot() const noexcept;
  std::atomic<uint64_t> generation_{1};
  DecisionCache cache_;
  ExplorationBudget budget_;
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> model_failures_{0};
};

}  // namespace pfa::learner

#include <pfa/learner/learned_router.h>

#include <pfa/store/store_observer.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace pfa::learner {

struct LearnedRouter::ModelState {
  std::shared_ptr<const CostModel> model;
  std::array<int16_t, kMaxBackends> backend_id{};  // per plugin index; -1: unknown to the model
  std::array<int16_t, 32> device_class_id{};       // per DLDeviceType
};

struct LearnedRouter::Ranked {
  Decision decision;                        // eligible plugins, best first
  std::array<double, kMaxBackends> cost{};  // per plugin index
  std::array<bool, kMaxBackends> from_model{};
  std::array<uint8_t, kMaxBackends> measured{};
  uint32_t to_measure = 0;
  bool pinned = false;  // order[0] is the operator's pin: never explored away
};

std::string plugin_device_class(const PluginList& plugins, int32_t dl_device_type) {
  for (const auto& plugin : plugins) {
    if (!plugin->serves_device_type(dl_device_type)) continue;
    // A plugin without such a device here (CUDA on a machine without a GPU) says "unknown".
    const DeviceDescription device = plugin->device_info(dl_device_type, 0);
    if (device.name != "unknown") return store::device_class(dl_device_type, device.detail);
  }
  return device_name(dl_device_type);
}

LearnedRouter::LearnedRouter(const PluginList& plugins, LearnedRouterOptions options)
    : plugins_(plugins),
      options_(std::move(options)),
      cache_(options_.cache_slots),
      budget_(options_.exploration) {
  for (size_t i = 0; i < plugins_.size() && i < kMaxBackends; ++i) names_[i] = plugins_[i]->name();
  for (int32_t t = 0; t < 32; ++t) {
    device_classes_[static_cast<size_t>(t)] =
        options_.device_class ? options_.device_class(t) : plugin_device_class(plugins_, t);
  }
}

LearnedRouter::~LearnedRouter() = default;

std::shared_ptr<const LearnedRouter::ModelState> LearnedRouter::state(
    Objective objective) const noexcept {
  std::lock_guard lock(models_mutex_);
  return models_[static_cast<int>(objective) % 3];
}

void LearnedRouter::set_model(std::shared_ptr<const CostModel> model) {
  if (!model) return;
  auto s = std::make_shared<ModelState>();
  for (size_t i = 0; i < kMaxBackends; ++i) {
    s->backend_id[i] = static_cast<int16_t>(
        i < plugins_.size() ? model->features().backend_id(plugins_[i]->name()) : -1);
  }
  for (size_t t = 0; t < 32; ++t) {
    s->device_class_id[t] = static_cast<int16_t>(model->features().device_class_id(device_classes_[t]));
  }
  const auto objective = model->objective();
  s->model = std::move(model);
  {
    std::lock_guard lock(models_mutex_);
    models_[static_cast<int>(objective) % 3] = std::move(s);
  }
  // After the store: a call that sees the new generation also sees the new model.
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

void LearnedRouter::clear_model(Objective objective) {
  {
    std::lock_guard lock(models_mutex_);
    models_[static_cast<int>(objective) % 3] = nullptr;
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

std::shared_ptr<const CostModel> LearnedRouter::model(Objective objective) const {
  auto s = state(objective);
  return s ? s->model : nullptr;
}

void LearnedRouter::set_pins(std::span<const store::Pin> pins) {
  auto table = std::make_shared<std::vector<PinnedBackend>>();
  for (const auto& pin : pins) {
    PinnedBackend p{pin.problem, pin.backend, -1};
    for (size_t i = 0; i < plugins_.size() && i < kMaxBackends; ++i) {
      if (plugins_[i]->name() == pin.backend) p.plugin = static_cast<int>(i);
    }
    table->push_back(std::move(p));
  }
  {
    std::lock_guard lock(models_mutex_);
    pins_ = std::move(table);
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);  // cached decisions may ignore a new pin
}

std::shared_ptr<const std::vector<LearnedRouter::PinnedBackend>> LearnedRouter::pins_snapshot()
    const noexcept {
  std::lock_guard lock(models_mutex_);
  return pins_;
}

const LearnedRouter::PinnedBackend* LearnedRouter::find_pin(const std::vector<PinnedBackend>* pins,
                                                            const Problem& problem) const noexcept {
  if (pins == nullptr) return nullptr;
  for (const auto& p : *pins) {
    if (store::pin_matches(p.problem, problem)) return &p;
  }
  return nullptr;
}

RouterStats LearnedRouter::stats() const noexcept {
  return {budget_.calls(), misses_.load(std::memory_order_relaxed), budget_.explored(),
          model_failures_.load(std::memory_order_relaxed),
          generation_.load(std::memory_order_relaxed)};
}

uint64_t LearnedRouter::next_random() noexcept {
  static std::atomic<uint64_t> counter{0};
  uint64_t x = options_.exploration.seed +
               counter.fetch_add(0x9e3779b97f4a7c15ull, std::memory_order_relaxed);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void LearnedRouter::put_first(Decision& decision, uint16_t slot) noexcept {
  const uint16_t chosen = decision.order[slot];
  for (uint16_t s = slot; s > 0; --s) decision.order[s] = decision.order[s - 1];
  decision.order[0] = chosen;
  decision.explored = true;
}

void LearnedRouter::rank(const Problem& problem, const RoutingPolicy& policy,
                         const ModelState* state, Ranked& out) noexcept {
  Decision& d = out.decision;
  d.count = 0;
  d.explored = false;
  const CostModel* model = state ? state->model.get() : nullptr;
  const size_t type = static_cast<size_t>(problem.device_type) & 31;
  const int device_class = state ? state->device_class_id[type] : -1;
  const uint64_t bucket = model ? problem_hash(problem, device_classes_[type]) : 0;
  std::array<int, kMaxBackends> model_ids{};
  std::array<uint16_t, kMaxBackends> model_plugins{};
  size_t asked = 0;
  const size_t n = std::min(plugins_.size(), kMaxBackends);
  for (size_t i = 0; i < n; ++i) {
    out.cost[i] = std::numeric_limits<double>::infinity();
    out.from_model[i] = false;
    out.measured[i] = 0;
    const Plugin& plugin = *plugins_[i];
    if (!eligible(plugin, problem, policy, nullptr, 0)) continue;
    d.order[d.count++] = static_cast<uint16_t>(i);
    out.cost[i] = objective_cost(plugin.estimate(problem), policy.objective);
    if (!model) continue;
    const int id = state->backend_id[i];
    if (id >= 0) {
      out.measured[i] = static_cast<uint8_t>(std::min(255, model->measurements(bucket, id)));
    }
    if (model->covers(id, device_class, problem)) {
      model_ids[asked] = id;
      model_plugins[asked++] = static_cast<uint16_t>(i);
    }
  }
  if (asked > 0) {
    std::array<double, kMaxBackends> predicted{};
    if (model->predict(problem, device_class, std::span<const int>(model_ids.data(), asked),
                       std::span<double>(predicted.data(), asked))) {
      for (size_t j = 0; j < asked; ++j) {
        out.cost[model_plugins[j]] = predicted[j];
        out.from_model[model_plugins[j]] = true;
      }
    } else {
      model_failures_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  rank_by_cost(d.order.data(), d.count, out.cost.data(), names_.data(), options_.tie_band);
  out.to_measure = 0;
  out.pinned = false;
  const auto pins = pins_snapshot();
  if (const PinnedBackend* pin = find_pin(pins.get(), problem); pin && pin->plugin >= 0) {
    for (uint16_t s = 0; s < d.count; ++s) {
      if (d.order[s] != pin->plugin) continue;
      for (uint16_t t = s; t > 0; --t) d.order[t] = d.order[t - 1];
      d.order[0] = static_cast<uint16_t>(pin->plugin);
      out.pinned = true;
      return;  // the operator decided: nothing to explore
    }
  }
  for (uint16_t s = 1; s < d.count; ++s) {
    const uint16_t i = d.order[s];
    if (out.measured[i] < options_.exploration.min_measurements) out.to_measure |= 1u << i;
  }
}

void LearnedRouter::choose(const Problem& problem, const RoutingPolicy& policy,
                           Decision& decision) noexcept {
  budget_.count_call();
  const CacheKey key = make_cache_key(problem, policy);
  const uint64_t generation = generation_.load(std::memory_order_acquire);
  uint32_t to_measure = 0;
  const uint32_t slot = cache_.find(key, generation, decision);
  const bool hit = slot != DecisionCache::kNoSlot;
  // A split problem is never explored: every rank must pick the same backend, and a random or
  // budget-dependent choice could differ between ranks.
  const bool may_explore = options_.exploration.enabled && ranks_of(problem) == 1;
  if (hit) {
    if (!may_explore || decision.count < 2) return;
    to_measure = cache_.to_measure(slot);
  } else {
    misses_.fetch_add(1, std::memory_order_relaxed);
    const auto s = state(policy.objective);
    Ranked ranked;
    rank(problem, policy, s.get(), ranked);
    decision = ranked.decision;
    to_measure = ranked.to_measure;
    cache_.insert(key, generation, decision, ranked.measured.data(), to_measure);
    if (!may_explore || decision.count < 2 || ranked.pinned) return;
  }
  if (to_measure != 0) {
    for (uint16_t s = 1; s < decision.count; ++s) {
      if (!(to_measure & (1u << decision.order[s]))) continue;
      if (budget_.try_take()) put_first(decision, s);
      return;
    }
  }
  if (!hit && options_.exploration.epsilon > 0) {
    const uint64_t r = next_random();
    if (static_cast<double>(r >> 11) * 0x1.0p-53 < options_.exploration.epsilon &&
        budget_.try_take()) {
      put_first(decision, static_cast<uint16_t>(1 + (r % (decision.count - 1u))));
    }
  }
}

void LearnedRouter::observe(const Problem& problem, const RoutingPolicy& policy,
                            const Outcome& outcome) noexcept {
  const CacheKey key = make_cache_key(problem, policy);
  Decision unused;
  const uint32_t slot =
      cache_.find(key, generation_.load(std::memory_order_acquire), unused);
  if (slot == DecisionCache::kNoSlot) return;
  cache_.count_run(slot, outcome.backend, outcome.ok, options_.exploration.min_measurements,
                   options_.exploration.max_failures);
}

Explanation LearnedRouter::explain(const Problem& problem, const RoutingPolicy& policy) {
  const auto s = state(policy.objective);
  const CostModel* model = s ? s->model.get() : nullptr;
  Explanation out;
  out.router = model ? fmt::format("learned ({} model trained on {} runs)",
                                   objective_name(policy.objective), model->trained_rows())
                     : fmt::format("learned (no {} model yet: plugin estimates)",
                                   objective_name(policy.objective));
  Ranked ranked;
  rank(problem, policy, s.get(), ranked);
  const size_t type = static_cast<size_t>(problem.device_type) & 31;
  const int device_class = s ? s->device_class_id[type] : -1;
  for (uint16_t slot = 0; slot < ranked.decision.count; ++slot) {
    const uint16_t i = ranked.decision.order[slot];
    CandidateExplanation c;
    c.backend = plugins_[i]->name();
    c.eligible = true;
    c.estimate = plugins_[i]->estimate(problem);
    c.predicted_cost = ranked.cost[i];
    const int id = s ? s->backend_id[i] : -1;
    if (ranked.from_model[i]) {
      const Coverage* cov = model->coverage(id, device_class);
      c.reason = fmt::format("model prediction ({} runs of it on {} in training, {} on this shape)",
                             cov ? cov->rows : 0, device_classes_[type], ranked.measured[i]);
    } else {
      const char* why = "no model for this objective yet";
      if (model) model->covers(id, device_class, problem, &why);
      c.reason = fmt::format("plugin estimate: {}", why);
    }
    if (slot > 0 && options_.exploration.enabled && !ranked.pinned &&
        ranked.measured[i] < options_.exploration.min_measurements) {
      c.reason += fmt::format("; to be explored ({} of {} runs measured here)", ranked.measured[i],
                              options_.exploration.min_measurements);
    }
    out.candidates.push_back(std::move(c));
  }
  if (ranked.pinned) {
    out.candidates.front().reason = "pinned by the operator (pfa-tune pin); otherwise " +
                                    out.candidates.front().reason;
  }
  if (!out.candidates.empty()) out.chosen = out.candidates.front().backend;
  const auto pins = pins_snapshot();
  const PinnedBackend* pin = find_pin(pins.get(), problem);
  if (pin && pin->plugin < 0) {
    out.router += fmt::format("; the pin to {} is ignored: no such backend is loaded", pin->backend);
  }
  for (size_t i = 0; i < plugins_.size() && i < kMaxBackends; ++i) {
    char reason[512] = {0};
    if (eligible(*plugins_[i], problem, policy, reason, sizeof reason)) continue;
    CandidateExplanation c;
    c.backend = plugins_[i]->name();
    c.eligible = false;
    c.reason = reason[0] ? reason : "not eligible";
    if (pin && pin->plugin == static_cast<int>(i)) {
      c.reason = "pinned by the operator, but not eligible, so the pin is ignored: " + c.reason;
    }
    c.estimate = plugins_[i]->estimate(problem);
    c.predicted_cost = std::numeric_limits<double>::infinity();
    out.candidates.push_back(std::move(c));
  }
  return out;
}

}  // namespace pfa::learner

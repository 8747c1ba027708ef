// Bounded exploration: how the learned router keeps measuring backends the model undervalues,
// without letting exploration cost more than a fixed share of calls.
//
// The policy:
//  1. Coverage. In each problem bucket (one exact shape under one routing policy), every eligible
//     backend should have at least `min_measurements` successful runs, counted from the records the
//     model was built from plus the runs observe() has seen since. A call whose bucket still has an
//     under-measured backend runs that backend first (the best-ranked one among them) if the budget
//     allows. A backend that failed `max_failures` times in a bucket is not explored there again.
//  2. Epsilon. On a decision-cache miss, with probability `epsilon` (0.05, Vowpal Wabbit's
//     epsilon-greedy default) a uniformly chosen eligible backend other than the best runs first,
//     so that a model that is confidently wrong about a measured bucket still gets corrected.
//  3. Budget. Exploration happens only while explored calls <= budget_fraction * calls + burst over
//     the router's lifetime, so at most 5% of calls (plus a small start-up burst) are exploratory,
//     whatever the workload. An explored call still falls back to the best backend if it fails.
// Explored calls are flagged (Decision::explored) and recorded as such.
#pragma once

#include <atomic>
#include <cstdint>

namespace pfa::learner {

struct ExplorationPolicy {
  bool enabled = true;
  int min_measurements = 3;
  int max_failures = 2;
  double epsilon = 0.05;
  double budget_fraction = 0.05;
  uint64_t burst = 16;
  uint64_t seed = 0x5eed;  // per-thread random streams derive from it
};

// The global budget: lock-free, two relaxed atomics.
class ExplorationBudget {
 public:
  explicit ExplorationBudget(const ExplorationPolicy& policy)
      : fraction_(policy.budget_fraction), burst_(policy.burst) {}

  void count_call() noexcept { calls_.fetch_add(1, std::memory_order_relaxed); }

  // Takes one exploration from the budget; false when it is spent.
  bool try_take() noexcept {
    const double allowed =
        fraction_ * static_cast<double>(calls_.load(std::memory_order_relaxed)) +
        static_cast<double>(burst_);
    uint64_t used = explored_.load(std::memory_order_relaxed);
    do {
      if (static_cast<double>(used + 1) > allowed) return false;
    } while (!explored_.compare_exchange_weak(used, used + 1, std::memory_order_relaxed));
    return true;
  }

  uint64_t calls() const noexcept { return calls_.load(std::memory_order_relaxed); }
  uint64_t explored() const noexcept { return explored_.load(std::memory_order_relaxed); }

 private:
  double fraction_;
  uint64_t burst_;
  std::atomic<uint64_t> calls_{0};
  std::atomic<uint64_t> explored_{0};
};

}  // namespace pfa::learner

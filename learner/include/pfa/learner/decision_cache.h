// DecisionCache: the learned router's answer per problem bucket, so that the model is asked only
// once per bucket and model generation.
//
// A bucket is the exact problem (every field of pfa_problem but the softmax scale and device id)
// under one routing policy: routing must not merge shapes whose winners differ, and real workloads
// repeat a few exact shapes. A fixed-size open-addressing table of cache-line slots, each guarded
// by a sequence counter (readers retry-free: a torn read is a miss), so a hit takes no lock and
// allocates nothing. Entries carry the model generation they were computed under; swapping a model
// bumps the generation, which invalidates every entry at once. When a probe window is full the
// entry at its start is overwritten.
//
// Each slot also keeps the exploration state of its bucket: successful runs and failures per
// backend, and a mask of backends still to measure. Those are plain relaxed counters updated by
// observe(); a slot reused for another bucket at the same moment may miscount one run, which only
// shifts when exploration stops.
#pragma once

#include <pfa/problem.h>
#include <pfa/router.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace pfa::learner {

struct CacheKey {
  static constexpr size_t kWords = 8;
  uint64_t words[kWords];
  uint64_t hash;
};

CacheKey make_cache_key(const Problem& problem, const RoutingPolicy& policy) noexcept;

class DecisionCache {
 public:
  static constexpr uint32_t kNoSlot = UINT32_MAX;

  // `slots` is rounded up to a power of two (at least 64).
  explicit DecisionCache(size_t slots);
  ~DecisionCache();

  // The slot holding `key` at `generation` with its decision copied into `decision`, or kNoSlot.
  uint32_t find(const CacheKey& key, uint64_t generation, Decision& decision) const noexcept;

  // Stores a decision with its bucket's initial exploration state: `measured[i]` successful runs
  // of plugin i, and `to_measure` the plugins (bits) still to explore. Returns the slot, or kNoSlot
  // when another thread was writing it (the decision is then simply not cached).
  uint32_t insert(const CacheKey& key, uint64_t generation, const Decision& decision,
                  const uint8_t* measured, uint32_t to_measure) noexcept;

  // Bits of the plugins still to measure in the slot's bucket.
  uint32_t to_measure(uint32_t slot) const noexcept;

  // Counts one run of plugin `backend` in the slot's bucket; clears its bit once it has
  // `min_measurements` successes or `max_failures` failures.
  void count_run(uint32_t slot, uint16_t backend, bool ok, int min_measurements,
                 int max_failures) noexcept;

  size_t capacity() const noexcept { return mask_ + 1; }

 private:
  struct Slot;
  static constexpr size_t kProbe = 4;
  std::unique_ptr<Slot[]> slots_;
  size_t mask_;
};

}  // namespace pfa::learner

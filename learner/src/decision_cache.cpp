#include <pfa/learner/decision_cache.h>

#include <algorithm>
#include <bit>
#include <cstring>

namespace pfa::learner {

namespace {

constexpr uint64_t kEmpty = 0;  // generations start at 1

uint64_t mix(uint64_t h, uint64_t v) noexcept {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

uint64_t finish(uint64_t h) noexcept {
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

}  // namespace

CacheKey make_cache_key(const Problem& p, const RoutingPolicy& policy) noexcept {
  CacheKey k;
  k.words[0] = static_cast<uint64_t>(p.batch);
  k.words[1] = static_cast<uint64_t>(p.heads_q) << 32 | static_cast<uint32_t>(p.heads_kv);
  k.words[2] = static_cast<uint64_t>(p.seqlen_q);
  k.words[3] = static_cast<uint64_t>(p.seqlen_k);
  k.words[4] = static_cast<uint64_t>(p.head_dim) << 32 | (static_cast<uint64_t>(p.dtype & 0xff) << 24) |
               (static_cast<uint64_t>(p.layout & 0xff) << 16) |
               (static_cast<uint64_t>(p.causal & 0xff) << 8) | static_cast<uint64_t>(p.want_lse & 0xff);
  k.words[5] = static_cast<uint64_t>(static_cast<uint32_t>(p.device_type)) << 32 |
               static_cast<uint32_t>(p.device_id);
  k.words[6] = static_cast<uint64_t>(static_cast<uint32_t>(ranks_of(p))) << 32 |
               static_cast<uint64_t>(policy.objective) << 8 | (policy.what_if ? 1u : 0u);
  k.words[7] = std::bit_cast<uint64_t>(policy.max_rel_error);
  uint64_t h = 0;
  for (uint64_t w : k.words) h = mix(h, w);
  k.hash = finish(h);
  return k;
}

// One cache line for the lookup, one for the exploration counters.
struct alignas(64) DecisionCache::Slot {
  std::atomic<uint64_t> seq{0};  // odd while a writer is inside
  std::atomic<uint64_t> generation{kEmpty};
  std::atomic<uint64_t> key[CacheKey::kWords]{};
  std::atomic<uint64_t> order[kMaxBackends / 8]{};  // 8 plugin indexes (uint8) per word
  std::atomic<uint32_t> count{0};
  std::atomic<uint32_t> to_measure{0};
  std::atomic<uint8_t> measured[kMaxBackends]{};
  std::atomic<uint8_t> failed[kMaxBackends]{};
};

static_assert(kMaxBackends <= 32 && kMaxBackends % 8 == 0, "a slot packs plugin indexes in bytes");

DecisionCache::DecisionCache(size_t slots) {
  const size_t n = std::bit_ceil(std::max<size_t>(slots, 64));
  slots_ = std::make_unique<Slot[]>(n);
  mask_ = n - 1;
}

DecisionCache::~DecisionCache() = default;

uint32_t DecisionCache::find(const CacheKey& key, uint64_t generation,
                             Decision& decision) const noexcept {
  for (size_t i = 0; i < kProbe; ++i) {
    const size_t index = (key.hash + i) & mask_;
    const Slot& s = slots_[index];
    const uint64_t before = s.seq.load(std::memory_order_acquire);
    if (before & 1) continue;
    if (s.generation.load(std::memory_order_relaxed) != generation) continue;
    bool same = true;
    for (size_t w = 0; w < CacheKey::kWords; ++w) {
      same &= s.key[w].load(std::memory_order_relaxed) == key.words[w];
    }
    if (!same) continue;
    uint64_t order[kMaxBackends / 8];
    for (size_t w = 0; w < kMaxBackends / 8; ++w) order[w] = s.order[w].load(std::memory_order_relaxed);
    const uint32_t count = s.count.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s.seq.load(std::memory_order_relaxed) != before) return kNoSlot;  // torn: treat as a miss
    decision.count = static_cast<uint16_t>(std::min<uint32_t>(count, kMaxBackends));
    decision.explored = false;
    for (size_t j = 0; j < decision.count; ++j) {
      decision.order[j] = static_cast<uint16_t>((order[j / 8] >> (8 * (j % 8))) & 0xff);
    }
    return static_cast<uint32_t>(index);
  }
  return kNoSlot;
}

uint32_t DecisionCache::insert(const CacheKey& key, uint64_t generation, const Decision& decision,
                               const uint8_t* measured, uint32_t to_measure) noexcept {
  // Prefer the slot already holding this key, then a stale or empty one, else the window's start.
  size_t target = key.hash & mask_;
  bool found = false;
  for (size_t i = 0; i < kProbe && !found; ++i) {
    const size_t index = (key.hash + i) & mask_;
    const Slot& s = slots_[index];
    bool same = true;
    for (size_t w = 0; w < CacheKey::kWords; ++w) {
      same &= s.key[w].load(std::memory_order_relaxed) == key.words[w];
    }
    if (same || s.generation.load(std::memory_order_relaxed) != generation) {
      target = index;
      found = same;
      if (same) break;
    }
  }
  if (!found) {
    for (size_t i = 0; i < kProbe; ++i) {
      const size_t index = (key.hash + i) & mask_;
      if (slots_[index].generation.load(std::memory_order_relaxed) != generation) {
        target = index;
        break;
      }
    }
  }
  Slot& s = slots_[target];
  uint64_t seq = s.seq.load(std::memory_order_relaxed);
  if ((seq & 1) || !s.seq.compare_exchange_strong(seq, seq + 1, std::memory_order_acquire)) {
    return kNoSlot;
  }
  std::atomic_thread_fence(std::memory_order_release);
  s.generation.store(generation, std::memory_order_relaxed);
  for (size_t w = 0; w < CacheKey::kWords; ++w) s.key[w].store(key.words[w], std::memory_order_relaxed);
  uint64_t order[kMaxBackends / 8] = {};
  for (size_t j = 0; j < decision.count && j < kMaxBackends; ++j) {
    order[j / 8] |= static_cast<uint64_t>(decision.order[j] & 0xff) << (8 * (j % 8));
  }
  for (size_t w = 0; w < kMaxBackends / 8; ++w) s.order[w].store(order[w], std::memory_order_relaxed);
  s.count.store(decision.count, std::memory_order_relaxed);
  for (size_t j = 0; j < kMaxBackends; ++j) {
    s.measured[j].store(measured ? measured[j] : 0, std::memory_order_relaxed);
    s.failed[j].store(0, std::memory_order_relaxed);
  }
  s.to_measure.store(to_measure, std::memory_order_relaxed);
  s.seq.store(seq + 2, std::memory_order_release);
  return static_cast<uint32_t>(target);
}

uint32_t DecisionCache::to_measure(uint32_t slot) const noexcept {
  return slots_[slot & mask_].to_measure.load(std::memory_order_relaxed);
}

void DecisionCache::count_run(uint32_t slot, uint16_t backend, bool ok, int min_measurements,
                              int max_failures) noexcept {
  if (backend >= kMaxBackends) return;
  Slot& s = slots_[slot & mask_];
  auto bump = [](std::atomic<uint8_t>& c) {
    uint8_t v = c.load(std::memory_order_relaxed);
    if (v < 255) c.store(static_cast<uint8_t>(v + 1), std::memory_order_relaxed);
    return static_cast<int>(v) + 1;
  };
  const int n = bump(ok ? s.measured[backend] : s.failed[backend]);
  if (n >= (ok ? min_measurements : max_failures)) {
    s.to_measure.fetch_and(~(1u << backend), std::memory_order_relaxed);
  }
}

}  // namespace pfa::learner

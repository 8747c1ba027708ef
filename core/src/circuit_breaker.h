// A per-backend circuit breaker: closed while the backend works; open (skipped) for a cooldown
// after repeated consecutive failures; then half-open, when exactly one call probes the backend —
// success closes the breaker, failure opens it for another cooldown. Lock-free, no allocation.
#pragma once

#include <atomic>
#include <cstdint>

namespace pfa::detail {

class CircuitBreaker {
 public:
  // True when a call may run the backend now: the breaker is closed, or its cooldown has passed and
  // this call won the single probe.
  bool allow(int64_t now_ns) noexcept {
    const int64_t until = open_until_ns_.load(std::memory_order_acquire);
    if (until == 0) return true;
    if (now_ns < until) return false;
    bool expected = false;
    return probing_.compare_exchange_strong(expected, true, std::memory_order_acq_rel);
  }

  void on_success() noexcept {
    failures_.store(0, std::memory_order_relaxed);
    open_until_ns_.store(0, std::memory_order_release);
    probing_.store(false, std::memory_order_release);
  }

  void on_failure(int64_t now_ns, int threshold, int64_t cooldown_ns) noexcept {
    if (probing_.load(std::memory_order_acquire)) {  // the probe failed: open again
      open(now_ns + cooldown_ns);
      return;
    }
    if (failures_.fetch_add(1, std::memory_order_relaxed) + 1 >= threshold) {
      open(now_ns + cooldown_ns);
    }
  }

  bool is_open(int64_t now_ns) const noexcept {
    const int64_t until = open_until_ns_.load(std::memory_order_acquire);
    return until != 0 && now_ns < until;
  }

 private:
  void open(int64_t until_ns) noexcept {
    failures_.store(0, std::memory_order_relaxed);
    open_until_ns_.store(until_ns, std::memory_order_release);
    probing_.store(false, std::memory_order_release);
  }

  std::atomic<int> failures_{0};
  std::atomic<int64_t> open_until_ns_{0};  // 0: closed
  std::atomic<bool> probing_{false};
};

}  // namespace pfa::detail

// Passes executions to another observer only while open: pfa-tune records timed runs, not the
// warm-up runs before them. Open for failures only, it lets the failed runs through while the
// command records the successful ones itself, with the times it measured (on CUDA, events around
// each call and the GPU's energy counter; see cli/common/measure.h).
#pragma once

#include <pfa/engine.h>

#include <atomic>
#include <memory>

namespace pfa::tune {

class GatedObserver final : public ExecutionObserver {
 public:
  explicit GatedObserver(std::shared_ptr<ExecutionObserver> inner) : inner_(std::move(inner)) {}
  void open(bool on) noexcept { state_.store(on ? kAll : kClosed, std::memory_order_relaxed); }
  void open_for_failures() noexcept { state_.store(kFailures, std::memory_order_relaxed); }
  void on_execution(const Execution& execution) noexcept override {
    const int state = state_.load(std::memory_order_relaxed);
    if (state == kAll || (state == kFailures && execution.status != PFA_STATUS_OK)) {
      inner_->on_execution(execution);
    }
  }

 private:
  static constexpr int kClosed = 0, kFailures = 1, kAll = 2;
  std::shared_ptr<ExecutionObserver> inner_;
  std::atomic<int> state_{kClosed};
};

}  // namespace pfa::tune

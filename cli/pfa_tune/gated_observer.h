// Passes executions to another observer only while open: pfa-tune records timed runs, not the
// warm-up runs before them.
#pragma once

#include <pfa/engine.h>

#include <atomic>
#include <memory>

namespace pfa::tune {

class GatedObserver final : public ExecutionObserver {
 public:
  explicit GatedObserver(std::shared_ptr<ExecutionObserver> inner) : inner_(std::move(inner)) {}
  void open(bool on) noexcept { open_.store(on, std::memory_order_relaxed); }
  void on_execution(const Execution& execution) noexcept override {
    if (open_.load(std::memory_order_relaxed)) inner_->on_execution(execution);
  }

 private:
  std::shared_ptr<ExecutionObserver> inner_;
  std::atomic<bool> open_{false};
};

}  // namespace pfa::tune

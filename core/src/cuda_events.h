// GPU time without linking CUDA: the CUDA runtime is looked up at run time (dlopen), and the
// engine times a CUDA call with an event pair recorded on the caller's stream around the plugin's
// run(). Nothing on the call path waits for the GPU: a resolver thread waits for the end event,
// turns the pair into milliseconds and only then hands the execution to the router and the
// observer (the store), so what is recorded for a CUDA call is its GPU time.
//
// pfa-tune uses the same loader for device memory, events between repeats and the PCI bus id that
// NVML needs (nvml_energy.h).
#pragma once

#include <pfa/engine.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pfa::detail {

// The few CUDA runtime entry points pfa uses, as plain C function pointers (cudaError_t is an int;
// events and streams are opaque pointers).
struct CudaRuntime {
  using Event = void*;
  using Stream = void*;
  int (*event_create_with_flags)(Event*, unsigned) = nullptr;
  int (*event_record)(Event, Stream) = nullptr;
  int (*event_synchronize)(Event) = nullptr;
  int (*event_query)(Event) = nullptr;
  int (*event_elapsed_time)(float*, Event, Event) = nullptr;
  int (*event_destroy)(Event) = nullptr;
  int (*get_device)(int*) = nullptr;
  int (*set_device)(int) = nullptr;
  int (*get_device_count)(int*) = nullptr;
  int (*stream_is_capturing)(Stream, int*) = nullptr;
  int (*stream_synchronize)(Stream) = nullptr;
  int (*malloc)(void**, size_t) = nullptr;
  int (*free)(void*) = nullptr;
  int (*memcpy)(void*, const void*, size_t, int) = nullptr;
  int (*memset)(void*, int, size_t) = nullptr;
  int (*device_synchronize)() = nullptr;
  int (*device_get_pci_bus_id)(char*, int, int) = nullptr;
  int (*runtime_get_version)(int*) = nullptr;
  int (*driver_get_version)(int*) = nullptr;
  const char* (*get_error_string)(int) = nullptr;
  int (*get_last_error)() = nullptr;
  std::string library;  // what was loaded

  static constexpr unsigned kEventBlockingSync = 0x01;  // cudaEventBlockingSync
  static constexpr int kMemcpyHostToDevice = 1;
  static constexpr int kMemcpyDeviceToHost = 2;

  // "cudaErrorX: text" for a failed call.
  std::string error_text(int code) const;
};

// The process's CUDA runtime, loaded once (thread-safe): PFA_CUDART if set, else one already in
// the process, else libcudart.so.13 / .12 / .11 / libcudart.so on the loader's path, in
// /usr/local/cuda/lib64 and next to a pip wheel's nvidia/cu13 or cuda_runtime folder found
// through the loaded LibTorch. Null when none loads; `why` then says what was tried.
const CudaRuntime* cuda_runtime(std::string* why = nullptr);

// Number of CUDA devices the runtime sees; 0 with `why` when there is no runtime or no device.
int cuda_device_count(std::string* why = nullptr);

// A pair of timing events on one device, handed out by EventPool and returned to it.
struct EventPair {
  void* start = nullptr;
  void* end = nullptr;
  int device = 0;
};

// Reuses events (creating one costs microseconds; recording one costs about one).
class EventPool {
 public:
  explicit EventPool(const CudaRuntime& rt) : rt_(rt) {}
  ~EventPool();
  EventPool(const EventPool&) = delete;
  EventPool& operator=(const EventPool&) = delete;
  // A pair created on `device` (the caller's current device is left as it was); false on failure.
  bool take(int device, EventPair& pair);
  void give_back(const EventPair& pair);

 private:
  const CudaRuntime& rt_;
  std::mutex mutex_;
  std::vector<EventPair> free_;
};

// Records `event` on `stream` of `device`, switching the calling thread's current device only
// when it differs (and back). False when the runtime refuses (the caller then skips GPU timing).
bool record_event(const CudaRuntime& rt, void* event, void* stream, int device);

// Milliseconds between two recorded events, waiting for the end one; < 0 on failure.
double elapsed_ms(const CudaRuntime& rt, const EventPair& pair);

// Sits between the engine and its observer and router for CUDA calls. The engine hands over an
// execution whose event pair has been recorded; the resolver thread waits for the end event,
// writes the GPU time into the report's latency and then calls router.observe() and
// observer.on_execution(). Everything else passes straight through on the caller's thread.
class GpuTimingObserver final : public ExecutionObserver {
 public:
  GpuTimingObserver(const CudaRuntime& rt, std::shared_ptr<ExecutionObserver> inner);
  ~GpuTimingObserver() override;

  // The router the resolver reports GPU times to; set once by the engine after construction.
  void set_router(std::shared_ptr<Router> router) { router_ = std::move(router); }

  // Not deferred: straight to the inner observer.
  void on_execution(const Execution& execution) noexcept override;

  // A pair for a call on `device` whose start is recorded on `stream`; false (no timing) when the
  // stream is being captured into a graph or the runtime refuses.
  bool begin(int device, void* stream, EventPair& pair) noexcept;
  // Records the end event after run(). False when that fails (the pair is then released).
  bool end(void* stream, EventPair& pair) noexcept;
  // Gives back a pair that will not be deferred (the run failed).
  void cancel(const EventPair& pair) noexcept;
  // Hands a timed execution to the resolver; false when its queue is full (the caller then
  // delivers the execution itself with the host-side time, and the pair is released).
  bool defer(const Execution& execution, uint16_t backend_index, const EventPair& pair) noexcept;
  // Waits until every deferred execution has been delivered.
  void drain() noexcept;
  // Stops the resolver after draining; later executions pass straight through.
  void stop() noexcept;

  // Executions delivered with GPU time, and those that fell back to the host-side time.
  uint64_t timed() const noexcept;
  uint64_t untimed() const noexcept;

  static constexpr size_t kMaxPending = 4096;

 private:
  struct Pending {
    Problem problem;
    const Plugin* plugin;
    RoutingPolicy policy;
    Report report;
    uint16_t backend;
    EventPair events;
  };
  void resolve_loop();

  const CudaRuntime& rt_;
  std::shared_ptr<ExecutionObserver> inner_;
  std::shared_ptr<Router> router_;
  EventPool pool_;
  std::mutex mutex_;
  std::condition_variable wake_, idle_;
  std::deque<Pending> queue_;
  size_t in_flight_ = 0;  // taken off the queue, not yet delivered
  bool stopping_ = false;
  std::thread thread_;  // started with the first deferred execution
  uint64_t timed_ = 0, untimed_ = 0;
};

}  // namespace pfa::detail

#include "cuda_events.h"

#include <pfa/router.h>

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>

namespace pfa::detail {

namespace {

template <class F>
bool bind(void* handle, const char* symbol, F& target) {
  target = reinterpret_cast<F>(dlsym(handle, symbol));
  return target != nullptr;
}

// Folders where a pip wheel's CUDA runtime sits, found from a loaded LibTorch
// (.../site-packages/torch/lib/libtorch_cuda.so -> .../site-packages/nvidia/...).
std::vector<std::string> wheel_candidates() {
  std::vector<std::string> out;
  for (const char* lib : {"libtorch_cuda.so", "libc10_cuda.so", "libtorch.so"}) {
    void* h = dlopen(lib, RTLD_LAZY | RTLD_NOLOAD);
    if (h == nullptr) continue;
    void* sym = dlsym(h, "_ZN3c104cuda12device_countEv");  // any symbol, to ask where it lives
    if (sym == nullptr) sym = dlsym(h, "_init");
    Dl_info info{};
    if (sym != nullptr && dladdr(sym, &info) != 0 && info.dli_fname != nullptr) {
      const std::filesystem::path site =
          std::filesystem::path(info.dli_fname).parent_path().parent_path().parent_path();
      for (const char* sub : {"nvidia/cu13/lib/libcudart.so.13",
                              "nvidia/cuda_runtime/lib/libcudart.so.13",
                              "nvidia/cuda_runtime/lib/libcudart.so.12"}) {
        out.push_back((site / sub).string());
      }
    }
    dlclose(h);
  }
  return out;
}

struct Loaded {
  CudaRuntime rt;
  bool ok = false;
  std::string why;
};

Loaded load() {
  Loaded l;
  std::vector<std::string> names;
  if (const char* env = std::getenv("PFA_CUDART"); env != nullptr && env[0] != '\0') {
    names.emplace_back(env);
  }
  const char* sonames[] = {"libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0",
                           "libcudart.so"};
  void* handle = nullptr;
  std::string loaded;
  // One already in the process (LibTorch's, a plugin's) first: the same runtime, the same
  // contexts.
  for (const char* name : sonames) {
    if ((handle = dlopen(name, RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD)) != nullptr) {
      loaded = name;
      break;
    }
  }
  if (handle == nullptr) {
    for (const char* name : sonames) names.emplace_back(name);
    for (const char* dir : {"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"}) {
      for (const char* name : {"libcudart.so.13", "libcudart.so.12"}) {
        names.push_back(std::string(dir) + "/" + name);
      }
    }
    for (auto& w : wheel_candidates()) names.push_back(std::move(w));
    for (const auto& name : names) {
      if ((handle = dlopen(name.c_str(), RTLD_LAZY | RTLD_LOCAL)) != nullptr) {
        loaded = name;
        break;
      }
    }
  }
  if (handle == nullptr) {
    l.why = "no CUDA runtime library could be loaded (tried PFA_CUDART, libcudart.so.13/.12/.11.0, "
            "/usr/local/cuda/lib64 and the PyTorch wheel's nvidia folder)";
    return l;
  }
  CudaRuntime& r = l.rt;
  r.library = loaded;
  const bool all =
      bind(handle, "cudaEventCreateWithFlags", r.event_create_with_flags) &&
      bind(handle, "cudaEventRecord", r.event_record) &&
      bind(handle, "cudaEventSynchronize", r.event_synchronize) &&
      bind(handle, "cudaEventQuery", r.event_query) &&
      bind(handle, "cudaEventElapsedTime", r.event_elapsed_time) &&
      bind(handle, "cudaEventDestroy", r.event_destroy) &&
      bind(handle, "cudaGetDevice", r.get_device) && bind(handle, "cudaSetDevice", r.set_device) &&
      bind(handle, "cudaGetDeviceCount", r.get_device_count) &&
      bind(handle, "cudaStreamIsCapturing", r.stream_is_capturing) &&
      bind(handle, "cudaStreamSynchronize", r.stream_synchronize) &&
      bind(handle, "cudaMalloc", r.malloc) && bind(handle, "cudaFree", r.free) &&
      bind(handle, "cudaMemcpy", r.memcpy) && bind(handle, "cudaMemset", r.memset) &&
      bind(handle, "cudaDeviceSynchronize", r.device_synchronize) &&
      bind(handle, "cudaDeviceGetPCIBusId", r.device_get_pci_bus_id) &&
      bind(handle, "cudaRuntimeGetVersion", r.runtime_get_version) &&
      bind(handle, "cudaDriverGetVersion", r.driver_get_version) &&
      bind(handle, "cudaGetErrorString", r.get_error_string) &&
      bind(handle, "cudaGetLastError", r.get_last_error);
  if (!all) {
    l.why = loaded + " lacks a CUDA runtime function pfa needs: " + dlerror();
    return l;  // the handle stays open: harmless, and another lookup may share it
  }
  l.ok = true;
  return l;
}

const Loaded& loaded_runtime() {
  static const Loaded l = load();
  return l;
}

}  // namespace

std::string CudaRuntime::error_text(int code) const {
  const char* text = get_error_string != nullptr ? get_error_string(code) : nullptr;
  return "CUDA error " + std::to_string(code) + (text != nullptr ? std::string(": ") + text : "");
}

const CudaRuntime* cuda_runtime(std::string* why) {
  const Loaded& l = loaded_runtime();
  if (!l.ok) {
    if (why != nullptr) *why = l.why;
    return nullptr;
  }
  return &l.rt;
}

int cuda_device_count(std::string* why) {
  const CudaRuntime* rt = cuda_runtime(why);
  if (rt == nullptr) return 0;
  int n = 0;
  const int e = rt->get_device_count(&n);
  if (e != 0) {
    rt->get_last_error();
    if (why != nullptr) *why = "no CUDA device (" + rt->error_text(e) + ")";
    return 0;
  }
  if (n == 0 && why != nullptr) *why = "the CUDA runtime sees no device";
  return n;
}

// ---- events -----------------------------------------------------------------------------------

namespace {

// Runs `f` with `device` current on this thread, restoring the previous device after.
template <class F>
bool on_device(const CudaRuntime& rt, int device, F f) {
  int current = -1;
  if (rt.get_device(&current) != 0) {
    rt.get_last_error();
    return false;
  }
  if (current != device && rt.set_device(device) != 0) {
    rt.get_last_error();
    return false;
  }
  const bool ok = f();
  if (current != device) rt.set_device(current);
  return ok;
}

}  // namespace

EventPool::~EventPool() {
  for (const auto& p : free_) {
    rt_.event_destroy(p.start);
    rt_.event_destroy(p.end);
  }
}

bool EventPool::take(int device, EventPair& pair) {
  {
    std::lock_guard lock(mutex_);
    for (size_t i = free_.size(); i-- > 0;) {
      if (free_[i].device == device) {
        pair = free_[i];
        free_[i] = free_.back();
        free_.pop_back();
        return true;
      }
    }
  }
  pair.device = device;
  return on_device(rt_, device, [&] {
    // Blocking sync: the resolver thread sleeps in cudaEventSynchronize instead of spinning.
    if (rt_.event_create_with_flags(&pair.start, CudaRuntime::kEventBlockingSync) != 0) {
      rt_.get_last_error();
      return false;
    }
    if (rt_.event_create_with_flags(&pair.end, CudaRuntime::kEventBlockingSync) != 0) {
      rt_.get_last_error();
      rt_.event_destroy(pair.start);
      return false;
    }
    return true;
  });
}

void EventPool::give_back(const EventPair& pair) {
  std::lock_guard lock(mutex_);
  free_.push_back(pair);
}

bool record_event(const CudaRuntime& rt, void* event, void* stream, int device) {
  return on_device(rt, device, [&] {
    if (rt.event_record(event, stream) != 0) {
      rt.get_last_error();
      return false;
    }
    return true;
  });
}

double elapsed_ms(const CudaRuntime& rt, const EventPair& pair) {
  if (rt.event_synchronize(pair.end) != 0) {
    rt.get_last_error();
    return -1;
  }
  float ms = 0;
  if (rt.event_elapsed_time(&ms, pair.start, pair.end) != 0) {
    rt.get_last_error();
    return -1;
  }
  return ms;
}

// ---- the resolver -----------------------------------------------------------------------------

GpuTimingObserver::GpuTimingObserver(const CudaRuntime& rt,
                                     std::shared_ptr<ExecutionObserver> inner)
    : rt_(rt), inner_(std::move(inner)), pool_(rt) {}

GpuTimingObserver::~GpuTimingObserver() { stop(); }

void GpuTimingObserver::on_execution(const Execution& execution) noexcept {
  if (inner_) inner_->on_execution(execution);
}

bool GpuTimingObserver::begin(int device, void* stream, EventPair& pair) noexcept {
  try {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return false;
    }
    int capturing = 0;  // cudaStreamCaptureStatusNone
    if (rt_.stream_is_capturing(stream, &capturing) != 0) {
      rt_.get_last_error();
      return false;
    }
    if (capturing != 0) return false;  // events in a graph under capture would never resolve here
    if (!pool_.take(device, pair)) return false;
    if (!record_event(rt_, pair.start, stream, device)) {
      pool_.give_back(pair);
      return false;
    }
    return true;
  } catch (...) {
    return false;
  }
}

bool GpuTimingObserver::end(void* stream, EventPair& pair) noexcept {
  if (record_event(rt_, pair.end, stream, pair.device)) return true;
  pool_.give_back(pair);
  return false;
}

void GpuTimingObserver::cancel(const EventPair& pair) noexcept {
  try {
    pool_.give_back(pair);
  } catch (...) {
  }
}

bool GpuTimingObserver::defer(const Execution& e, uint16_t backend_index,
                              const EventPair& pair) noexcept {
  try {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= kMaxPending) {
      ++untimed_;
      pool_.give_back(pair);
      return false;
    }
    if (!thread_.joinable()) thread_ = std::thread([this] { resolve_loop(); });
    queue_.push_back(Pending{e.problem, &e.plugin, e.policy, e.report, backend_index, pair});
  } catch (...) {
    pool_.give_back(pair);
    return false;
  }
  wake_.notify_one();
  return true;
}

void GpuTimingObserver::resolve_loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stopping, and nothing left to deliver
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    ++in_flight_;
    lock.unlock();

    const double ms = elapsed_ms(rt_, p.events);
    pool_.give_back(p.events);
    const bool gpu_timed = ms >= 0;
    if (gpu_timed) p.report.latency_s = ms * 1e-3;
    if (router_) {
      const Outcome outcome{p.backend, true, p.report.latency_s, p.report.energy_j,
                            p.report.explored};
      router_->observe(p.problem, p.policy, outcome);
    }
    if (inner_) {
      inner_->on_execution(Execution{p.problem, *p.plugin, p.policy, PFA_STATUS_OK, "", p.report});
    }

    lock.lock();
    --in_flight_;
    if (gpu_timed) ++timed_;
    else ++untimed_;
    if (queue_.empty() && in_flight_ == 0) idle_.notify_all();
  }
  idle_.notify_all();
}

void GpuTimingObserver::drain() noexcept {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return !thread_.joinable() || (queue_.empty() && in_flight_ == 0); });
}

void GpuTimingObserver::stop() noexcept {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t GpuTimingObserver::timed() const noexcept {
  std::lock_guard lock(const_cast<std::mutex&>(mutex_));
  return timed_;
}

uint64_t GpuTimingObserver::untimed() const noexcept {
  std::lock_guard lock(const_cast<std::mutex&>(mutex_));
  return untimed_;
}

}  // namespace pfa::detail

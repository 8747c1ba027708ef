// GPU timing without linking CUDA (core/src/cuda_events.h): the resolver that turns an event pair
// into the recorded latency off the caller's thread, driven here by a stand-in runtime whose
// events report a fixed time, so that the deferral, the hand-over to router and observer, the
// capture guard, the pool and shutdown are checked on any machine. With a GPU, the real runtime
// times real work; without one that test skips and says why. NVML likewise.
#include "cuda_events.h"
#include "nvml_energy.h"

#include <pfa/plugin_loader.h>
#include <pfa/router.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

namespace pfa::test {
namespace {

using detail::CudaRuntime;
using detail::EventPair;
using detail::GpuTimingObserver;

// ---- a stand-in CUDA runtime ----
std::atomic<int> g_events_alive{0};
std::atomic<int> g_capturing{0};
std::atomic<int> g_records{0};

int fake_create(void** e, unsigned) {
  *e = new int(0);
  ++g_events_alive;
  return 0;
}
int fake_destroy(void* e) {
  delete static_cast<int*>(e);
  --g_events_alive;
  return 0;
}
int fake_record(void*, void*) {
  ++g_records;
  return 0;
}
int fake_sync(void*) {
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the GPU still busy for a while
  return 0;
}
int fake_elapsed(float* ms, void*, void*) {
  *ms = 1.5f;
  return 0;
}
int fake_get_device(int* d) {
  *d = 0;
  return 0;
}
int fake_ok_int(int) { return 0; }
int fake_capturing(void*, int* c) {
  *c = g_capturing.load();
  return 0;
}
int fake_no_error() { return 0; }

CudaRuntime fake_runtime() {
  CudaRuntime rt;
  rt.event_create_with_flags = fake_create;
  rt.event_destroy = fake_destroy;
  rt.event_record = fake_record;
  rt.event_synchronize = fake_sync;
  rt.event_elapsed_time = fake_elapsed;
  rt.get_device = fake_get_device;
  rt.set_device = fake_ok_int;
  rt.stream_is_capturing = fake_capturing;
  rt.get_last_error = fake_no_error;
  rt.library = "stand-in";
  return rt;
}

// ---- what receives the executions ----
struct Seen {
  double latency_s;
  std::thread::id thread;
  std::string backend;
};

class Collecting final : public ExecutionObserver {
 public:
  void on_execution(const Execution& e) noexcept override {
    std::lock_guard lock(mutex);
    seen.push_back({e.report.latency_s, std::this_thread::get_id(), std::string(e.report.backend)});
  }
  std::mutex mutex;
  std::vector<Seen> seen;
};

class ObservingRouter final : public Router {
 public:
  std::string_view name() const noexcept override { return "observing"; }
  void choose(const Problem&, const RoutingPolicy&, Decision& d) noexcept override { d.count = 0; }
  Explanation explain(const Problem&, const RoutingPolicy&) override { return {}; }
  void observe(const Problem&, const RoutingPolicy&, const Outcome& o) noexcept override {
    std::lock_guard lock(mutex);
    latencies.push_back(o.latency_s);
  }
  std::mutex mutex;
  std::vector<double> latencies;
};

PluginSet good_plugins() {
  PluginSearch search;
  search.paths = {std::filesystem::path(PFA_TEST_PLUGIN_DIR) / "good"};
  search.default_paths = false;
  return load_plugins(search);
}

struct Fixture {
  CudaRuntime rt = fake_runtime();
  PluginSet plugins = good_plugins();
  std::shared_ptr<Collecting> inner = std::make_shared<Collecting>();
  std::shared_ptr<ObservingRouter> router = std::make_shared<ObservingRouter>();
  Problem problem = [] {
    Problem p = make_problem(1, 2, 2, 64, 64, 64, PFA_DTYPE_BF16, false);
    p.device_type = kDLCUDA;
    return p;
  }();
  RoutingPolicy policy{};
  Report report;
  Fixture() {
    report.latency_s = 20e-6;  // what the host saw: the time to enqueue
    report.backend = plugins.plugins.at(0)->name();
  }
};

TEST(GpuTiming, DeliversTheGpuTimeOffTheCallersThread) {
  Fixture f;
  ASSERT_FALSE(f.plugins.plugins.empty());
  {
    GpuTimingObserver timing(f.rt, f.inner);
    timing.set_router(f.router);
    for (int i = 0; i < 5; ++i) {
      EventPair pair;
      ASSERT_TRUE(timing.begin(0, nullptr, pair));
      ASSERT_TRUE(timing.end(nullptr, pair));
      const Execution e{f.problem, *f.plugins.plugins[0], f.policy, PFA_STATUS_OK, "", f.report};
      ASSERT_TRUE(timing.defer(e, 0, pair));
    }
    // Nothing waited on the caller's thread: five deferrals while each resolution takes 2 ms.
    timing.drain();
    EXPECT_EQ(timing.timed(), 5u);
    EXPECT_EQ(timing.untimed(), 0u);
    timing.set_router(nullptr);
  }
  ASSERT_EQ(f.inner->seen.size(), 5u);
  for (const Seen& s : f.inner->seen) {
    EXPECT_DOUBLE_EQ(s.latency_s, 1.5e-3);  // the events' time, not the host's 20 us
    EXPECT_NE(s.thread, std::this_thread::get_id());
    EXPECT_EQ(s.backend, f.plugins.plugins[0]->name());
  }
  ASSERT_EQ(f.router->latencies.size(), 5u);
  for (double l : f.router->latencies) EXPECT_DOUBLE_EQ(l, 1.5e-3);
  // Pairs are reused: one pair served all five sequential calls, and all are destroyed.
  EXPECT_EQ(g_events_alive.load(), 0);
}

TEST(GpuTiming, PassesUntimedExecutionsStraightThrough) {
  Fixture f;
  GpuTimingObserver timing(f.rt, f.inner);
  const Execution e{f.problem, *f.plugins.plugins[0], f.policy, PFA_STATUS_INTERNAL, "boom",
                    f.report};
  timing.on_execution(e);
  ASSERT_EQ(f.inner->seen.size(), 1u);
  EXPECT_EQ(f.inner->seen[0].thread, std::this_thread::get_id());
  EXPECT_DOUBLE_EQ(f.inner->seen[0].latency_s, 20e-6);
}

TEST(GpuTiming, DoesNotTimeAStreamUnderGraphCapture) {
  Fixture f;
  GpuTimingObserver timing(f.rt, f.inner);
  g_capturing = 1;
  EventPair pair;
  const int records = g_records.load();
  EXPECT_FALSE(timing.begin(0, nullptr, pair));
  EXPECT_EQ(g_records.load(), records);  // nothing recorded into the graph
  g_capturing = 0;
  EXPECT_TRUE(timing.begin(0, nullptr, pair));
  timing.cancel(pair);
}

TEST(GpuTiming, StopDeliversWhatIsPendingAndRefusesMore) {
  Fixture f;
  GpuTimingObserver timing(f.rt, f.inner);
  for (int i = 0; i < 3; ++i) {
    EventPair pair;
    ASSERT_TRUE(timing.begin(0, nullptr, pair));
    ASSERT_TRUE(timing.end(nullptr, pair));
    ASSERT_TRUE(timing.defer(
        Execution{f.problem, *f.plugins.plugins[0], f.policy, PFA_STATUS_OK, "", f.report}, 0,
        pair));
  }
  timing.stop();
  EXPECT_EQ(f.inner->seen.size(), 3u);
  EventPair pair;
  EXPECT_FALSE(timing.begin(0, nullptr, pair));  // stopped: the caller records host times
}

// The real runtime, where there is one: an event pair around a device memset measures > 0 ms.
TEST(GpuTimingCuda, EventsTimeRealWork) {
  std::string why;
  if (detail::cuda_device_count(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why;
  const CudaRuntime& rt = *detail::cuda_runtime();
  std::printf("CUDA runtime: %s\n", rt.library.c_str());
  detail::EventPool pool(rt);
  EventPair pair;
  ASSERT_TRUE(pool.take(0, pair));
  void* data = nullptr;
  const size_t bytes = size_t{256} << 20;
  ASSERT_EQ(rt.malloc(&data, bytes), 0);
  ASSERT_TRUE(detail::record_event(rt, pair.start, nullptr, 0));
  for (int i = 0; i < 4; ++i) ASSERT_EQ(rt.memset(data, i, bytes), 0);
  ASSERT_TRUE(detail::record_event(rt, pair.end, nullptr, 0));
  const double ms = detail::elapsed_ms(rt, pair);
  EXPECT_GT(ms, 0.0);
  EXPECT_LT(ms, 1000.0);
  std::printf("4 x 256 MiB memset: %.3f ms (%.0f GB/s)\n", ms, 4.0 * bytes / (ms * 1e-3) / 1e9);
  rt.free(data);
  pool.give_back(pair);
}

TEST(NvmlEnergy, CounterMovesUnderLoadOrSaysWhyNot) {
  std::string why;
  const CudaRuntime* rt = detail::cuda_runtime(&why);
  char bus[64] = {0};
  if (rt != nullptr && detail::cuda_device_count() > 0) rt->device_get_pci_bus_id(bus, sizeof bus, 0);
  detail::NvmlEnergy nvml(bus, 0);
  if (!nvml.available()) {
    EXPECT_FALSE(nvml.why_not().empty());
    GTEST_SKIP() << "no energy counter: " << nvml.why_not();
  }
  uint64_t a = 0, b = 0;
  ASSERT_TRUE(nvml.read_mj(a));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(nvml.read_mj(b));
  EXPECT_GE(b, a);  // total energy since the driver loaded never decreases
  std::printf("%s: %llu mJ in 300 ms idle\n", nvml.device_name().c_str(),
              static_cast<unsigned long long>(b - a));
}

}  // namespace
}  // namespace pfa::test

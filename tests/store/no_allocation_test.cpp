// The call path allocates nothing: AsyncWriter::enqueue and StoreObserver::on_execution (once the
// device is cached) are counted by replacing the global allocator in this test binary.
#include "store_test_util.h"

#include <pfa/engine.h>
#include <pfa/store/async_writer.h>
#include <pfa/store/store_observer.h>

#include <cstdlib>
#include <new>
#include <string>

namespace {
thread_local long g_allocations = 0;  // on this thread
}

void* operator new(std::size_t size) {
  ++g_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
  ++g_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace pfa::store {
namespace {

pfa_status create(const pfa_host_info*, pfa_context** context, char*, size_t) {
  *context = nullptr;
  return PFA_STATUS_OK;
}
void destroy(pfa_context*) {}
pfa_status supports(pfa_context*, const pfa_problem*, char*, size_t) { return PFA_STATUS_OK; }
pfa_status run(pfa_context*, const pfa_run_args*, pfa_run_result*, char*, size_t) {
  return PFA_STATUS_OK;
}
pfa_status device_info(pfa_context*, int32_t, int32_t, pfa_device_info* info, char*, size_t) {
  std::snprintf(info->name, sizeof info->name, "Counting CPU");
  std::snprintf(info->detail, sizeof info->detail, "a long enough detail to defeat small-string "
                                                   "storage in any std::string it passes through");
  return PFA_STATUS_OK;
}

TEST(NoAllocation, EnqueueAndObserverAllocateNothing) {
  testing::TempDir dir;
  auto writer = std::make_shared<AsyncWriter>(dir / "pfa.db", AsyncWriterOptions{.capacity = 4096});
  StoreObserver observer(writer);

  pfa_plugin_api api{};
  api.struct_size = sizeof api;
  api.abi_major = PFA_ABI_VERSION_MAJOR;
  api.abi_minor = PFA_ABI_VERSION_MINOR;
  api.name = "counting_backend";
  api.version = "1.0";
  api.description = "counts";
  api.device_types = 1u << kDLCPU;
  api.create = create;
  api.destroy = destroy;
  api.supports = supports;
  api.run = run;
  api.device_info = device_info;
  Plugin plugin(nullptr, &api, "counting.so");
  const RoutingPolicy policy{};
  Report report;
  report.backend = plugin.name();
  report.latency_s = 1e-4;
  const Problem problem = make_problem(1, 8, 8, 128, 128, 64, PFA_DTYPE_FP32, false);
  const ExecutionRecord record = testing::simple_record(3, 3);

  // The first call asks the plugin for its device (that allocates) and caches the answer.
  observer.on_execution(Execution{problem, plugin, policy, PFA_STATUS_OK, "", report});

  // The counter sees allocations on this thread.
  g_allocations = 0;
  {
    std::string probe(100, 'x');
    asm volatile("" : : "r"(probe.data()) : "memory");
  }
  ASSERT_GT(g_allocations, 0);

  g_allocations = 0;
  for (int i = 0; i < 1000; ++i) {
    writer->enqueue(record);
    observer.on_execution(Execution{problem, plugin, policy, i % 10 ? PFA_STATUS_OK
                                                                    : PFA_STATUS_DEVICE_ERROR,
                                    i % 10 ? "" : "a failure message", report});
  }
  const long allocations = g_allocations;
  EXPECT_EQ(allocations, 0);

  writer->flush();
  EXPECT_EQ(writer->written() + writer->dropped(), 2001u);
}

}  // namespace
}  // namespace pfa::store

// StoreObserver: an engine execution becomes a complete record in the store, with the device
// looked up once per plugin and device.
#include "store_test_util.h"

#include <pfa/engine.h>
#include <pfa/store/store.h>
#include <pfa/store/store_observer.h>

#include <atomic>
#include <cstring>
#include <thread>

namespace pfa::store {
namespace {

using testing::TempDir;

// A minimal backend table: only what StoreObserver touches is real.
std::atomic<int> g_device_info_calls{0};

pfa_status test_create(const pfa_host_info*, pfa_context** context, char*, size_t) {
  *context = nullptr;
  return PFA_STATUS_OK;
}
void test_destroy(pfa_context*) {}
pfa_status test_supports(pfa_context*, const pfa_problem*, char*, size_t) { return PFA_STATUS_OK; }
pfa_status test_run(pfa_context*, const pfa_run_args*, pfa_run_result*, char*, size_t) {
  return PFA_STATUS_OK;
}
pfa_status test_device_info(pfa_context*, int32_t type, int32_t id, pfa_device_info* info, char*,
                            size_t) {
  g_device_info_calls.fetch_add(1);
  if (type == kDLCUDA) {
    std::snprintf(info->name, sizeof info->name, "Test GPU %d", id);
    std::snprintf(info->detail, sizeof info->detail, "sm_90a driver 13.0 runtime 13.0");
  } else {
    std::snprintf(info->name, sizeof info->name, "Test CPU");
    std::snprintf(info->detail, sizeof info->detail, "avx512 16 threads");
  }
  return PFA_STATUS_OK;
}

pfa_plugin_api make_api(const char* name, uint32_t properties) {
  pfa_plugin_api api{};
  api.struct_size = sizeof api;
  api.abi_major = PFA_ABI_VERSION_MAJOR;
  api.abi_minor = PFA_ABI_VERSION_MINOR;
  api.name = name;
  api.version = "2.3.4";
  api.description = "test backend";
  api.properties = properties;
  api.device_types = (1u << kDLCPU) | (1u << kDLCUDA);
  api.create = test_create;
  api.destroy = test_destroy;
  api.supports = test_supports;
  api.run = test_run;
  api.device_info = test_device_info;
  return api;
}

TEST(DeviceClass, NamesTheArchitecture) {
  EXPECT_EQ(device_class(kDLCPU, "avx512"), "cpu");
  EXPECT_EQ(device_class(kDLCUDA, "sm_90 driver 13.0"), "cuda:sm90");
  EXPECT_EQ(device_class(kDLCUDA, "SM90a, 132 SMs"), "cuda:sm90");
  EXPECT_EQ(device_class(kDLCUDA, "compute capability 8.0"), "cuda:sm80");
  EXPECT_EQ(device_class(kDLCUDA, "no idea"), "cuda");
  EXPECT_EQ(device_class(kDLCUDA, "132 SMs, sm_100"), "cuda:sm100");
}

TEST(StoreObserver, RecordsExecutionsWithTheirDevice) {
  TempDir dir;
  const auto path = dir / "pfa.db";
  const pfa_plugin_api exact_api = make_api("exact_backend", PFA_PROP_THREAD_SAFE);
  const pfa_plugin_api sim_api = make_api("sim_backend", PFA_PROP_SIMULATED | PFA_PROP_APPROXIMATE);
  Plugin exact(nullptr, &exact_api, "exact.so");
  Plugin sim(nullptr, &sim_api, "sim.so");
  const RoutingPolicy policy{};
  g_device_info_calls = 0;

  auto observer = std::make_shared<StoreObserver>(path, AsyncWriterOptions{}, RecordSource::bench);

  const Problem gpu = make_problem(2, 16, 4, 1024, 2048, 128, PFA_DTYPE_BF16, true);
  Problem gpu1 = gpu;
  gpu1.device_type = kDLCUDA;
  gpu1.device_id = 1;
  Problem gpu0 = gpu;
  gpu0.device_type = kDLCUDA;
  gpu0.device_id = 0;
  const Problem cpu = make_problem(1, 8, 8, 64, 64, 64, PFA_DTYPE_FP32, false);

  Report ok_report;
  ok_report.backend = exact.name();
  ok_report.latency_s = 0.00125;
  ok_report.energy_j = 0.4;
  ok_report.energy_measured = true;
  ok_report.explored = true;
  std::snprintf(ok_report.detail.data(), ok_report.detail.size(), "sm90a");

  Report sim_report;
  sim_report.backend = sim.name();
  sim_report.latency_s = 0.003;  // host time spent simulating
  sim_report.modelled_latency_s = 2e-6;
  sim_report.energy_j = 1e-5;
  sim_report.simulated = true;
  sim_report.approximate = true;
  sim_report.error_estimate = 0.02;

  Report failed_report;
  failed_report.backend = exact.name();
  failed_report.latency_s = 1e-5;

  // Many calls from several threads; the device is asked once per (plugin, device).
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 250; ++i) {
          observer->on_execution(
              Execution{gpu0, exact, policy, PFA_STATUS_OK, "", ok_report});
        }
      });
    }
  }
  observer->on_execution(Execution{gpu1, exact, policy, PFA_STATUS_OK, "", ok_report});
  observer->on_execution(Execution{cpu, sim, policy, PFA_STATUS_OK, "", sim_report});
  observer->on_execution(Execution{gpu0, exact, policy, PFA_STATUS_DEVICE_ERROR,
                                   "cudaErrorIllegalAddress at kernel launch", failed_report});
  EXPECT_EQ(g_device_info_calls.load(), 3);  // (exact, cuda 0), (exact, cuda 1), (sim, cpu)

  observer->writer().flush();
  EXPECT_EQ(observer->writer().dropped(), 0u);
  Store store(path);
  const auto rows = store.records();
  ASSERT_EQ(rows.size(), 1003u);

  const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const ExecutionRecord& first = rows[0];
  EXPECT_EQ(first.problem.batch, 2);
  EXPECT_EQ(first.problem.heads_kv, 4);
  EXPECT_EQ(first.problem.seqlen_k, 2048);
  EXPECT_EQ(first.problem.dtype, PFA_DTYPE_BF16);
  EXPECT_EQ(first.problem.causal, 1);
  EXPECT_FLOAT_EQ(first.problem.softmax_scale, gpu.softmax_scale);
  EXPECT_EQ(text(first.backend), "exact_backend");
  EXPECT_EQ(text(first.backend_version), "2.3.4");
  EXPECT_EQ(text(first.device_name), "Test GPU 0");
  EXPECT_EQ(text(first.device_detail), "sm_90a driver 13.0 runtime 13.0");
  EXPECT_EQ(text(first.device_class), "cuda:sm90");
  EXPECT_DOUBLE_EQ(first.latency_s, 0.00125);
  EXPECT_DOUBLE_EQ(first.wall_s, 0.00125);
  EXPECT_DOUBLE_EQ(first.energy_j, 0.4);
  EXPECT_TRUE(first.energy_measured);
  EXPECT_TRUE(first.ok);
  EXPECT_EQ(first.status, PFA_STATUS_OK);
  EXPECT_EQ(text(first.failure), "");
  EXPECT_TRUE(first.explored);
  EXPECT_FALSE(first.simulated);
  EXPECT_EQ(first.source, RecordSource::bench);
  EXPECT_EQ(text(first.pfa_version), pfa_version());
  EXPECT_EQ(text(first.detail), "sm90a");
  EXPECT_LE(first.timestamp_us, now_us);
  EXPECT_GT(first.timestamp_us, now_us - 60'000'000);

  const ExecutionRecord& other_gpu = rows[1000];
  EXPECT_EQ(text(other_gpu.device_name), "Test GPU 1");

  const ExecutionRecord& simulated = rows[1001];
  EXPECT_EQ(text(simulated.backend), "sim_backend");
  EXPECT_EQ(text(simulated.device_name), "Test CPU");
  EXPECT_EQ(text(simulated.device_class), "cpu");
  EXPECT_DOUBLE_EQ(simulated.latency_s, 2e-6);  // the device model's latency
  EXPECT_DOUBLE_EQ(simulated.wall_s, 0.003);    // the host's time
  EXPECT_TRUE(simulated.simulated);
  EXPECT_TRUE(simulated.approximate);
  EXPECT_FALSE(simulated.energy_measured);
  EXPECT_DOUBLE_EQ(simulated.error_estimate, 0.02);

  const ExecutionRecord& failed = rows[1002];
  EXPECT_FALSE(failed.ok);
  EXPECT_EQ(failed.status, PFA_STATUS_DEVICE_ERROR);
  EXPECT_EQ(text(failed.failure), "device_error: cudaErrorIllegalAddress at kernel launch");
  EXPECT_EQ(text(failed.device_name), "Test GPU 0");
}

}  // namespace
}  // namespace pfa::store

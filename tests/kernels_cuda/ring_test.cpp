// cuda_ring on real GPUs: one thread per GPU, an NCCL communicator over them (ncclCommInitAll),
// each rank's shard of fresh random q, k, v, the engine routing the split problem; every rank's
// output and log-sum-exp against fp64 attention over the whole sequence. Needs two or more GPUs
// and skips, saying why, otherwise.
#include <pfa/engine.h>
#include <pfa/sequence_sharding.h>

#include "attention_case.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <nccl.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

namespace pfa {
namespace {

int gpu_count(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    *why = std::string("no CUDA device: ") + cudaGetErrorString(e);
    cudaGetLastError();
    return 0;
  }
  if (n < 2) *why = "needs 2 or more GPUs, found " + std::to_string(n);
  return n;
}

EngineOptions ring_engine() {
  EngineOptions o;
  o.plugins.paths = {PFA_CUDA_RING_PLUGIN_PATH, PFA_CUDA_FA3_PLUGIN_PATH};
  o.plugins.default_paths = false;
  return o;
}

struct DeviceTensor {
  void* ptr = nullptr;
  DLTensor dl{};
  DeviceTensor(const test::HostTensor& host, int device, bool copy) {
    cudaSetDevice(device);
    const size_t bytes = host.storage_bytes();
    EXPECT_EQ(cudaMalloc(&ptr, bytes), cudaSuccess);
    if (copy) {
      EXPECT_EQ(cudaMemcpy(ptr, const_cast<test::HostTensor&>(host).data(), bytes,
                           cudaMemcpyHostToDevice), cudaSuccess);
    } else {
      EXPECT_EQ(cudaMemset(ptr, 0xff, bytes), cudaSuccess);  // NaN in fp16, bf16 and fp32
    }
    dl = host.dl();
    dl.data = ptr;
    dl.device = {kDLCUDA, device};
  }
  ~DeviceTensor() { cudaFree(ptr); }
  void copy_to(test::HostTensor& host) const {
    EXPECT_EQ(cudaMemcpy(host.data(), ptr, host.storage_bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  }
};

struct RingCase {
  int ranks;
  int64_t chunk;  // rows per mirrored chunk
  int64_t head_dim;
  pfa_dtype dtype;
  bool causal;
};

void run_ring_case(Engine& engine, const std::vector<ncclComm_t>& comms, const RingCase& rc,
                   std::mt19937_64& rng) {
  const int ranks = rc.ranks;
  const int64_t shard = 2 * rc.chunk, L = shard * ranks;
  Problem whole = make_problem(2, 8, 2, L, L, rc.head_dim, rc.dtype, rc.causal);
  whole.want_lse = 1;
  auto c = test::make_case(whole, PFA_LAYOUT_BSHD, rng);
  SCOPED_TRACE(test::describe(c) + " ranks " + std::to_string(ranks));
  const auto ref = test::reference_attention(c);

  std::vector<test::HostTensor> out_host, lse_host;
  std::vector<std::string> errors(static_cast<size_t>(ranks));
  std::vector<std::string> backends(static_cast<size_t>(ranks));
  for (int r = 0; r < ranks; ++r) {
    out_host.emplace_back(rc.dtype, std::vector<int64_t>{2, shard, 8, rc.head_dim});
    lse_host.emplace_back(PFA_DTYPE_FP32, std::vector<int64_t>{2, 8, shard});
  }
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      const auto q = test::mirrored_shard(c.q, ranks, r), k = test::mirrored_shard(c.k, ranks, r),
                 v = test::mirrored_shard(c.v, ranks, r);
      DeviceTensor dq(q, r, true), dk(k, r, true), dv(v, r, true);
      DeviceTensor dout(out_host[r], r, false), dlse(lse_host[r], r, false);
      cudaStream_t stream = nullptr;
      cudaStreamCreate(&stream);
      AttentionOptions o;
      o.causal = rc.causal;
      o.lse = &dlse.dl;
      o.stream = stream;
      o.ranks = ranks;
      o.communicator = comms[static_cast<size_t>(r)];
      try {
        // Twice: the second call reuses the workspace the first one grew.
        for (int repeat = 0; repeat < 2; ++repeat) {
          backends[r] = engine.attention(dq.dl, dk.dl, dv.dl, dout.dl, o).backend;
        }
        const cudaError_t e = cudaStreamSynchronize(stream);
        if (e != cudaSuccess) errors[r] = cudaGetErrorString(e);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
      dout.copy_to(out_host[r]);
      dlse.copy_to(lse_host[r]);
      cudaStreamDestroy(stream);
    });
  }
  for (auto& t : threads) t.join();

  double diff2 = 0, ref2 = 0, lse_err = 0;
  for (int r = 0; r < ranks; ++r) {
    ASSERT_EQ(errors[r], "") << "rank " << r;
    EXPECT_EQ(backends[r], "cuda_ring");
    EXPECT_EQ(out_host[r].count_non_finite(), 0) << "rank " << r << " left output unwritten";
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t i = 0; i < shard; ++i) {
        const int64_t g = sharding::global_row(ranks, r, shard, i);
        for (int64_t h = 0; h < 8; ++h) {
          for (int64_t d = 0; d < rc.head_dim; ++d) {
            const double want = ref.out[static_cast<size_t>(((b * L + g) * 8 + h) * rc.head_dim + d)];
            const double got = out_host[r].get(b, i, h, d);
            diff2 += (got - want) * (got - want);
            ref2 += want * want;
          }
          const double want_lse = ref.lse[static_cast<size_t>((b * 8 + h) * L + g)];
          lse_err = std::max(lse_err, std::abs(lse_host[r].get(b, h, i) - want_lse));
        }
      }
  }
  EXPECT_LT(std::sqrt(diff2 / ref2), test::tolerance(rc.dtype));
  EXPECT_LT(lse_err, 2e-3);
}

TEST(CudaRing, MatchesOneGpuAttentionOverTheWholeSequence) {
  std::string why;
  const int gpus = gpu_count(&why);
  if (gpus < 2) GTEST_SKIP() << why;
  Engine engine(ring_engine());
  ASSERT_NE(engine.find_plugin("cuda_ring"), nullptr) << "cuda_ring did not load";
  std::mt19937_64 rng(test::fresh_seed());
  for (int ranks = 2; ranks <= std::min(gpus, 4); ranks *= 2) {
    std::vector<ncclComm_t> comms(static_cast<size_t>(ranks));
    std::vector<int> devices(static_cast<size_t>(ranks));
    for (int r = 0; r < ranks; ++r) devices[r] = r;
    ASSERT_EQ(ncclCommInitAll(comms.data(), ranks, devices.data()), ncclSuccess);
    // 96-row chunks: shards are not a multiple of the kernel's 128-row tiles.
    for (const RingCase rc : {RingCase{ranks, 96, 128, PFA_DTYPE_BF16, true},
                              RingCase{ranks, 96, 128, PFA_DTYPE_BF16, false},
                              RingCase{ranks, 128, 64, PFA_DTYPE_FP16, true},
                              RingCase{ranks, 64, 256, PFA_DTYPE_BF16, true}}) {
      run_ring_case(engine, comms, rc, rng);
    }
    for (auto comm : comms) ncclCommDestroy(comm);
  }
}

TEST(CudaRing, RefusesWhatItCannotServeAndSaysWhy) {
  std::string why;
  if (gpu_count(&why) < 1) GTEST_SKIP() << why;
  Engine engine(ring_engine());
  const Plugin* ring = engine.find_plugin("cuda_ring");
  ASSERT_NE(ring, nullptr);
  Problem p = make_problem(1, 8, 8, 1024, 1024, 128, PFA_DTYPE_BF16, true);
  p.device_type = kDLCUDA;
  char reason[256] = {0};
  EXPECT_FALSE(ring->supports(p, reason, sizeof reason));  // one GPU: not split
  EXPECT_NE(std::string(reason).find("split"), std::string::npos) << reason;
  p.ranks = 2;
  EXPECT_TRUE(ring->supports(p, reason, sizeof reason)) << reason;
  p.seqlen_k = 512;
  EXPECT_FALSE(ring->supports(p, reason, sizeof reason));  // causal shards must mirror
  p.seqlen_k = 1024;
  p.dtype = PFA_DTYPE_FP32;
  EXPECT_FALSE(ring->supports(p, reason, sizeof reason));
}

}  // namespace
}  // namespace pfa

// torch_sdpa_flash, torch_sdpa_cudnn and torch_sdpa_efficient: one of PyTorch's attention kernels
// each, as router candidates beside plain torch_sdpa (PyTorch's own choice). Everywhere: they load,
// serve CUDA only, and refuse with a reason what they cannot take. On a GPU with LibTorch 2.x:
// each matches the fp64 reference on the shapes it accepts, and says which path ran.
#include "attention_case.h"
#include "torch_test_support.h"

#include <pfa/torch.h>

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/ones.h>

#include <gtest/gtest.h>

#include <torch/version.h>

#if defined(PFA_TORCH_CUDA)
#include <c10/cuda/CUDAStream.h>
#endif

#include <cstdio>
#include <mutex>
#include <thread>
#include <random>
#include <string>
#include <vector>

namespace pfa::test {
namespace {

const char* const kKernels[] = {"torch_sdpa_flash", "torch_sdpa_cudnn", "torch_sdpa_efficient"};

std::unique_ptr<Engine> make_kernels_engine() {
  EngineOptions options;
  const std::filesystem::path dir = torch_plugin_file().parent_path();
  options.plugins.paths = {torch_plugin_file()};
  for (const char* name : kKernels) {
    options.plugins.paths.push_back(dir / (std::string("pfa_plugin_") + name + ".so"));
  }
  options.plugins.default_paths = false;
  auto engine = std::make_unique<Engine>(std::move(options));
  for (const auto& e : engine->load_errors()) {
    ADD_FAILURE() << "plugin load error: " << e.path << ": " << e.message;
  }
  return engine;
}

Problem cuda_problem(int64_t hq, int64_t hkv, int64_t l, int64_t d, pfa_dtype dtype, bool causal) {
  Problem p = make_problem(1, hq, hkv, l, l, d, dtype, causal);
  p.device_type = kDLCUDA;
  return p;
}

TEST(TorchSdpaKernels, LoadServeCudaOnlyAndRefuseTheCpuWithAReason) {
  auto engine = make_kernels_engine();
  for (const char* name : kKernels) {
    SCOPED_TRACE(name);
    const Plugin* plugin = engine->find_plugin(name);
    ASSERT_NE(plugin, nullptr);
    EXPECT_TRUE(plugin->serves_device_type(kDLCUDA));
    EXPECT_FALSE(plugin->serves_device_type(kDLCPU));
    std::string reason;
    EXPECT_FALSE(plugin->supports(make_problem(1, 2, 2, 16, 16, 64, PFA_DTYPE_BF16, false), &reason));
    EXPECT_NE(reason.find("CUDA tensors only"), std::string::npos) << reason;
    EXPECT_NE(reason.find("torch_sdpa serves the CPU"), std::string::npos) << reason;
  }
  // Plain torch_sdpa still serves the CPU: it is the baseline everywhere.
  const Plugin* plain = engine->find_plugin("torch_sdpa");
  ASSERT_NE(plain, nullptr);
  EXPECT_TRUE(plain->supports(make_problem(1, 2, 2, 16, 16, 64, PFA_DTYPE_FP32, false)));
}

// Without CUDA in this LibTorch, or on LibTorch 1.x, or without a device: a reason that says so.
TEST(TorchSdpaKernels, SayWhyNotWhereThereIsNoUsableCuda) {
  auto engine = make_kernels_engine();
  const Problem p = cuda_problem(4, 4, 128, 64, PFA_DTYPE_BF16, false);
  for (const char* name : kKernels) {
    SCOPED_TRACE(name);
    const Plugin* plugin = engine->find_plugin(name);
    ASSERT_NE(plugin, nullptr);
    std::string reason;
    const bool ok = plugin->supports(p, &reason);
#if !defined(PFA_TORCH_CUDA)
    EXPECT_FALSE(ok);
    EXPECT_NE(reason.find("without CUDA"), std::string::npos) << reason;
#elif TORCH_VERSION_MAJOR < 2
    EXPECT_FALSE(ok);
    EXPECT_NE(reason.find("2.1+"), std::string::npos) << reason;
#else
    if (!ok) {
      EXPECT_FALSE(reason.empty());
      std::printf("%s: %s\n", name, reason.c_str());
    }
#endif
  }
}

// The operators' own constraints, where a device exists to ask about (else skipped).
TEST(TorchSdpaKernels, RefuseWhatTheKernelCannotTake) {
  auto engine = make_kernels_engine();
  const Plugin* flash = engine->find_plugin("torch_sdpa_flash");
  const Plugin* cudnn = engine->find_plugin("torch_sdpa_cudnn");
  const Plugin* efficient = engine->find_plugin("torch_sdpa_efficient");
  ASSERT_TRUE(flash && cudnn && efficient);
  std::string reason;
  if (!efficient->supports(cuda_problem(4, 4, 128, 64, PFA_DTYPE_BF16, false), &reason)) {
    GTEST_SKIP() << "no CUDA device served here: " << reason;
  }
  auto refuses = [](const Plugin* p, const Problem& problem, const char* words) {
    std::string why;
    EXPECT_FALSE(p->supports(problem, &why)) << p->name() << " took " << to_string(problem);
    EXPECT_NE(why.find(words), std::string::npos) << p->name() << ": " << why;
  };
  refuses(flash, cuda_problem(4, 4, 128, 64, PFA_DTYPE_FP32, false), "fp16 and bf16");
  refuses(cudnn, cuda_problem(4, 4, 128, 64, PFA_DTYPE_FP32, false), "fp16 and bf16");
  refuses(flash, cuda_problem(4, 4, 128, 264, PFA_DTYPE_BF16, false), "up to 256");
  refuses(flash, cuda_problem(4, 4, 128, 60, PFA_DTYPE_BF16, false), "multiple of 8");
  refuses(efficient, cuda_problem(4, 4, 128, 60, PFA_DTYPE_BF16, false), "multiple of 8");
  Problem lse = cuda_problem(4, 4, 128, 64, PFA_DTYPE_BF16, false);
  lse.want_lse = 1;
  refuses(flash, lse, "log-sum-exp");
  Problem masked = cuda_problem(4, 4, 128, 64, PFA_DTYPE_BF16, true);
  masked.seqlen_q = 64;
  refuses(efficient, masked, "bottom-right mask");
  EXPECT_TRUE(efficient->supports(cuda_problem(4, 4, 128, 64, PFA_DTYPE_FP32, false)));
  EXPECT_TRUE(flash->supports(cuda_problem(8, 2, 128, 128, PFA_DTYPE_BF16, true)));
}

#if defined(PFA_TORCH_CUDA)
at::ScalarType scalar_type_of(pfa_dtype dtype) {
  return dtype == PFA_DTYPE_FP32 ? at::kFloat : dtype == PFA_DTYPE_FP16 ? at::kHalf : at::kBFloat16;
}

at::Tensor as_tensor(HostTensor& t) {
  return at::from_blob(t.data(), t.shape(), t.strides(),
                       at::TensorOptions().dtype(scalar_type_of(t.dtype())));
}
#endif

// On a GPU: every kernel against the fp64 reference, GQA, causal (square and Lq > Lk), on the
// default stream; the detail names the kernel.
TEST(TorchSdpaKernelsCuda, MatchReference) {
  auto engine = make_kernels_engine();
  const Plugin* plain = engine->find_plugin("torch_sdpa");
  ASSERT_NE(plain, nullptr);
  std::string reason;
  if (!plain->supports(cuda_problem(2, 2, 16, 64, PFA_DTYPE_BF16, false), &reason)) {
    GTEST_SKIP() << "no CUDA here: " << reason;
  }
#if defined(PFA_TORCH_CUDA)
  std::printf("device: %s (%s)\n", plain->device_info(kDLCUDA, 0).name.c_str(),
              plain->device_info(kDLCUDA, 0).detail.c_str());
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("PFA_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const at::Device cuda(at::kCUDA, 0);
  struct Config { int64_t b, hq, hkv, lq, lk, d; bool causal; };
  const Config configs[] = {{2, 8, 8, 128, 128, 64, false}, {1, 8, 2, 200, 200, 128, true},
                            {1, 8, 2, 300, 77, 128, true},  {1, 4, 4, 65, 65, 256, false},
                            {2, 4, 1, 1, 500, 64, true}};
  int ran = 0;
  for (const char* name : kKernels) {
    const Plugin* plugin = engine->find_plugin(name);
    ASSERT_NE(plugin, nullptr);
    for (const pfa_dtype dtype : {PFA_DTYPE_FP16, PFA_DTYPE_BF16}) {
      for (const Config& k : configs) {
        Problem p = make_problem(k.b, k.hq, k.hkv, k.lq, k.lk, k.d, dtype, k.causal);
        AttentionCase c = make_case(p, PFA_LAYOUT_BSHD, rng);
        SCOPED_TRACE(std::string(name) + " " + describe(c));
        Problem on_gpu = p;
        on_gpu.device_type = kDLCUDA;
        std::string why;
        if (!plugin->supports(on_gpu, &why)) {
          std::printf("%s refuses %s: %s\n", name, to_string(on_gpu).c_str(), why.c_str());
          continue;
        }
        const Reference ref = reference_attention(c);
        const at::Tensor q = as_tensor(c.q).to(cuda), kk = as_tensor(c.k).to(cuda),
                         v = as_tensor(c.v).to(cuda);
        at::Tensor out = as_tensor(c.out).to(cuda);
        AttentionOptions options;
        options.causal = k.causal;
        options.backend = name;
        const Report report = pfa::attention(*engine, q, kk, v, out, options);
        c10::cuda::getDefaultCUDAStream().synchronize();
        EXPECT_EQ(report.backend, name);
        const std::string detail = report.detail.data();
        const std::string kernel = std::string(name).substr(std::string("torch_sdpa_").size());
        EXPECT_EQ(detail.rfind(kernel, 0), 0u) << detail;
        as_tensor(c.out).copy_(out);
        EXPECT_LT(relative_error(c, ref), tolerance(dtype)) << detail;
        ++ran;
      }
    }
  }
  EXPECT_GT(ran, 0);
#endif
}

// On a GPU: the engine times a CUDA call with events on the caller's stream and records the GPU
// time off the call path: the observer gets the execution after the engine is gone at the
// latest, with a latency that is the GPU's, not the host's enqueue time.
TEST(TorchSdpaKernelsCuda, EngineRecordsTheGpuTimeOfACudaCall) {
  struct Collect final : ExecutionObserver {
    void on_execution(const Execution& e) noexcept override {
      std::lock_guard lock(mutex);
      latencies.push_back(e.report.latency_s);
      threads.push_back(std::this_thread::get_id());
    }
    std::mutex mutex;
    std::vector<double> latencies;
    std::vector<std::thread::id> threads;
  };
  auto observer = std::make_shared<Collect>();
  Report report;
  {
    EngineOptions options;
    options.plugins.paths = {torch_plugin_file()};
    options.plugins.default_paths = false;
    options.observer = observer;
    Engine engine(std::move(options));
    const Plugin* plain = engine.find_plugin("torch_sdpa");
    ASSERT_NE(plain, nullptr);
    std::string reason;
    if (!plain->supports(cuda_problem(2, 2, 16, 64, PFA_DTYPE_BF16, false), &reason)) {
      GTEST_SKIP() << "no CUDA here: " << reason;
    }
#if defined(PFA_TORCH_CUDA)
    const at::TensorOptions on_gpu = at::TensorOptions().dtype(at::kBFloat16).device(at::kCUDA, 0);
    // Long enough that the GPU work clearly outlasts the host's enqueue.
    const at::Tensor q = at::ones({1, 8192, 16, 128}, on_gpu), k = at::ones({1, 8192, 16, 128}, on_gpu),
                     v = at::ones({1, 8192, 16, 128}, on_gpu);
    at::Tensor out = at::empty({1, 8192, 16, 128}, on_gpu);
    AttentionOptions o;
    o.backend = "torch_sdpa";
    for (int i = 0; i < 3; ++i) report = pfa::attention(engine, q, k, v, out, o);
    c10::cuda::getDefaultCUDAStream().synchronize();
#endif
  }  // the engine delivers what is pending before it goes
#if defined(PFA_TORCH_CUDA)
  ASSERT_EQ(observer->latencies.size(), 3u);
  const double gpu = observer->latencies.back();
  std::printf("host enqueue %.3f ms, recorded GPU time %.3f ms\n", report.latency_s * 1e3, gpu * 1e3);
  EXPECT_GT(gpu, 0.0);
  EXPECT_NE(gpu, report.latency_s);
  EXPECT_NE(observer->threads.back(), std::this_thread::get_id());  // resolved off the call path
#endif
}

}  // namespace
}  // namespace pfa::test

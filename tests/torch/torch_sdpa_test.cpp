// The torch_sdpa plugin, loaded from the build by the real engine and forced as the backend,
// against the fp64 reference. Each test case is its own process and pays for loading LibTorch,
// so a case loops over many configurations, each named by a SCOPED_TRACE.
#include "attention_case.h"
#include "torch_test_support.h"

#include <pfa/engine.h>
#include <pfa/error.h>
#include <pfa/problem.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace pfa::test {
namespace {

struct Shape {
  int64_t batch, heads_q, heads_kv, seqlen_q, seqlen_k, head_dim;
  bool causal;
  bool padded = false;
  float scale = 0.0f;  // 0: the default 1/sqrt(head_dim)
};

// Odd sizes, GQA and MQA, causal with Lq > Lk (rows that see no key) and Lq < Lk (explicit mask),
// single rows and keys, padded strides and a non-default scale.
const std::vector<Shape> kShapes = {
    {2, 4, 4, 17, 17, 40, false},
    {1, 4, 4, 17, 17, 72, true},
    {2, 8, 2, 33, 17, 64, true},          // GQA 4, causal, Lq > Lk: 16 blind rows
    {1, 6, 3, 17, 40, 40, true},          // GQA 2, causal, Lq < Lk
    {1, 4, 1, 1, 17, 64, true},           // MQA, a single query row
    {2, 2, 2, 1, 1, 32, false},           // a single key
    {1, 2, 2, 17, 1, 72, true},           // only the last row sees the key
    {1, 4, 2, 65, 65, 96, false, true},   // padded strides
    {1, 2, 2, 17, 33, 64, false, false, 0.3f},
    {1, 2, 1, 40, 23, 128, true, true, 0.05f},
};

Problem problem_of(const Shape& s, pfa_dtype dtype, bool lse) {
  Problem p = make_problem(s.batch, s.heads_q, s.heads_kv, s.seqlen_q, s.seqlen_k, s.head_dim,
                           dtype, s.causal);
  if (s.scale != 0.0f) p.softmax_scale = s.scale;
  p.want_lse = lse ? 1 : 0;
  return p;
}

bool plugin_supports(const Engine& engine, pfa_dtype dtype, std::string* reason = nullptr) {
  const Plugin* plugin = engine.find_plugin("torch_sdpa");
  return plugin != nullptr &&
         plugin->supports(make_problem(1, 1, 1, 4, 4, 32, dtype, false), reason);
}

// Runs one case through the engine and checks the output (and the LSE) against fp64.
void check_case(Engine& engine, AttentionCase& c) {
  const Reference ref = reference_attention(c);
  AttentionOptions options = c.options();
  options.backend = "torch_sdpa";
  Report report;
  try {
    report = engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), options);
  } catch (const Error& e) {
    ADD_FAILURE() << "engine threw: " << e.what();
    return;
  }
  EXPECT_EQ(report.backend, "torch_sdpa");
  EXPECT_FALSE(report.simulated);
  EXPECT_FALSE(report.approximate);
  const std::string detail(report.detail.data());
  const Problem& p = c.problem;
  if (p.want_lse) {
    EXPECT_EQ(detail, "math+lse");
  } else {
    EXPECT_TRUE(detail.rfind("sdpa", 0) == 0 || detail.rfind("_sdpa_1.13", 0) == 0) << detail;
    const bool masked = p.causal && p.seqlen_q < p.seqlen_k && p.seqlen_q > 1;
    EXPECT_EQ(detail.find("+mask") != std::string::npos, masked) << detail;
  }
  EXPECT_EQ(c.out.count_non_finite(), 0) << "output not fully written (poison left) or NaN";
  const double error = relative_error(c, ref);
  EXPECT_LT(error, tolerance(static_cast<pfa_dtype>(p.dtype))) << "relative error " << error;
  if (p.want_lse) {
    const double lse_error = lse_max_error(c, ref);
    EXPECT_LT(lse_error, 1e-3) << "largest LSE error " << lse_error;
  }
}

std::vector<pfa_dtype> served_dtypes(const Engine& engine) {
  std::vector<pfa_dtype> dtypes = {PFA_DTYPE_FP32, PFA_DTYPE_BF16};
  if (plugin_supports(engine, PFA_DTYPE_FP16)) dtypes.push_back(PFA_DTYPE_FP16);
  return dtypes;
}

// One process for the cheap checks: each test case pays for loading LibTorch.
TEST(TorchSdpaPlugin, DescribesItselfAndRefusesWhatItCannotServe) {
  auto engine = make_torch_engine();
  const Plugin* plugin = engine->find_plugin("torch_sdpa");
  ASSERT_NE(plugin, nullptr);
  EXPECT_FALSE(plugin->approximate());
  EXPECT_FALSE(plugin->simulated());
  EXPECT_TRUE(plugin->thread_safe());
  EXPECT_TRUE(plugin->serves_device_type(kDLCPU));
  EXPECT_NE(plugin->description().find("LibTorch"), std::string::npos);

  const DeviceDescription cpu = plugin->device_info(kDLCPU, 0);
  EXPECT_FALSE(cpu.name.empty());
  EXPECT_NE(cpu.detail.find("LibTorch"), std::string::npos) << cpu.detail;
  EXPECT_NE(cpu.detail.find("threads"), std::string::npos) << cpu.detail;

  // fp32 and bf16 always on the CPU; fp16 either served or refused with a reason.
  EXPECT_TRUE(plugin_supports(*engine, PFA_DTYPE_FP32));
  EXPECT_TRUE(plugin_supports(*engine, PFA_DTYPE_BF16));
  std::string reason;
  if (!plugin_supports(*engine, PFA_DTYPE_FP16, &reason)) {
    EXPECT_NE(reason.find("fp16"), std::string::npos) << reason;
  }

  // CUDA: served only when this LibTorch has CUDA and the device exists.
  Problem gpu = make_problem(1, 8, 8, 128, 128, 64, PFA_DTYPE_BF16, false);
  gpu.device_type = kDLCUDA;
  gpu.device_id = 64;  // no machine has this many
  std::string gpu_reason;
  EXPECT_FALSE(plugin->supports(gpu, &gpu_reason));
  EXPECT_FALSE(gpu_reason.empty());

  // The prior grows with the work and is finite and positive.
  const pfa_estimate small = plugin->estimate(make_problem(1, 8, 8, 128, 128, 64, PFA_DTYPE_FP32, false));
  const pfa_estimate large = plugin->estimate(make_problem(1, 8, 8, 2048, 2048, 64, PFA_DTYPE_FP32, false));
  EXPECT_GT(small.latency_s, 0);
  EXPECT_TRUE(std::isfinite(large.latency_s));
  EXPECT_GT(large.latency_s, 50 * small.latency_s);
  EXPECT_EQ(small.rel_error, 0);

  std::mt19937_64 rng(fresh_seed());
  if (!plugin_supports(*engine, PFA_DTYPE_FP16)) {
    // Forcing the backend on a problem it refuses is an `unsupported` error with its reason, and
    // the output stays untouched.
    AttentionCase c = make_case(problem_of(kShapes[0], PFA_DTYPE_FP16, false), PFA_LAYOUT_BSHD, rng);
    AttentionOptions options = c.options();
    options.backend = "torch_sdpa";
    try {
      engine->attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), options);
      ADD_FAILURE() << "fp16 on the CPU ran although supports() said no";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::unsupported);
      EXPECT_NE(std::string(e.what()).find("fp16"), std::string::npos) << e.what();
    }
    EXPECT_EQ(c.out.count_non_finite(), c.out.numel());
  }
  // A device type it does not serve never reaches run().
  Problem odd = make_problem(1, 2, 2, 8, 8, 32, PFA_DTYPE_FP32, false);
  odd.device_type = kDLOpenCL;
  std::string odd_reason;
  EXPECT_FALSE(plugin->supports(odd, &odd_reason));
  EXPECT_FALSE(odd_reason.empty());
}

TEST(TorchSdpaPlugin, MatchesReferenceAcrossShapesDtypesAndLayouts) {
  auto engine = make_torch_engine();
  ASSERT_NE(engine->find_plugin("torch_sdpa"), nullptr);
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("PFA_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (const pfa_dtype dtype : served_dtypes(*engine)) {
    for (const pfa_layout layout : {PFA_LAYOUT_BSHD, PFA_LAYOUT_BHSD}) {
      for (const Shape& shape : kShapes) {
        AttentionCase c = make_case(problem_of(shape, dtype, false), layout, rng, shape.padded);
        SCOPED_TRACE(describe(c));
        check_case(*engine, c);
      }
    }
  }
}

// The plugin declares itself thread-safe, so the engine runs it concurrently on one context.
TEST(TorchSdpaPlugin, ConcurrentCallsOnOneContext) {
  auto engine = make_torch_engine();
  ASSERT_NE(engine->find_plugin("torch_sdpa"), nullptr);
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("PFA_TEST_SEED=" + std::to_string(seed));
  constexpr int kThreads = 4;
  std::vector<AttentionCase> cases;
  std::mt19937_64 rng(seed);
  for (int t = 0; t < kThreads; ++t) {
    const Shape& shape = kShapes[static_cast<size_t>(t) % kShapes.size()];
    cases.push_back(make_case(problem_of(shape, PFA_DTYPE_FP32, t % 2 == 1), PFA_LAYOUT_BSHD, rng));
  }
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      AttentionCase& c = cases[static_cast<size_t>(t)];
      AttentionOptions options = c.options();
      options.backend = "torch_sdpa";
      try {
        for (int i = 0; i < 5; ++i) engine->attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), options);
      } catch (const std::exception& e) {
        failures[static_cast<size_t>(t)] = e.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    AttentionCase& c = cases[static_cast<size_t>(t)];
    SCOPED_TRACE(describe(c));
    EXPECT_EQ(failures[static_cast<size_t>(t)], "");
    EXPECT_LT(relative_error(c, reference_attention(c)), tolerance(PFA_DTYPE_FP32));
  }
}

TEST(TorchSdpaPlugin, LogSumExp) {
  auto engine = make_torch_engine();
  ASSERT_NE(engine->find_plugin("torch_sdpa"), nullptr);
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("PFA_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (const pfa_dtype dtype : served_dtypes(*engine)) {
    for (const pfa_layout layout : {PFA_LAYOUT_BSHD, PFA_LAYOUT_BHSD}) {
      for (const Shape& shape : kShapes) {
        AttentionCase c = make_case(problem_of(shape, dtype, true), layout, rng, shape.padded);
        SCOPED_TRACE(describe(c));
        check_case(*engine, c);
      }
    }
  }
}

}  // namespace
}  // namespace pfa::test

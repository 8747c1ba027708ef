// Tests of the sm_80 path of kernels/cuda (the mma.sync kernel, fa2_sm80.cuh) against an fp64
// reference: fresh random inputs every run, the output and LSE poisoned with NaN before each
// launch and checked fully written, relative error per dtype. Path::sm80 is forced, so the kernel
// runs on any GPU of compute capability 8.0 or newer (an H100 included). Without a CUDA device
// every GPU test skips with the reason; the capability answers are checked everywhere.
#include <pfa/kernels/cuda/attention_cuda.h>

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "attention_reference.h"

namespace {

using namespace pfa::cuda_test;

// Empty when a CUDA device of compute capability 8.0 or newer answers; otherwise why not.
std::string no_sm80_device_reason() {
  std::string why = no_device_reason();
  if (why.empty() && compute_capability() < 80)
    why = "the sm80 kernel needs compute capability 8.0 or newer";
  return why;
}

// A problem of the shared harness and the path to force.
struct Case : Problem {
  kc::Path path = kc::Path::sm80;

  std::string name() const {
    std::ostringstream s;
    s << (path == kc::Path::sm80 ? "sm80" : "auto") << "_b" << batch << "_h" << heads_q << "x"
      << heads_kv << "_q" << seqlen_q << "_k" << seqlen_k << "_d" << head_dim
      << (causal ? "_causal" : "") << (dtype == DType::bf16 ? "_bf16" : "_fp16")
      << (bhsd ? "_bhsd" : "_bshd");
    if (in_pad) s << "_inpad" << in_pad;
    if (out_pad) s << "_outpad" << out_pad;
    if (!lse) s << "_nolse";
    return s.str();
  }
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name(); }

Outcome run_case(const Case& c, std::mt19937_64& rng) {
  kc::LaunchOptions opt;
  opt.path = c.path;
  return run_against_reference(c, opt, rng);
}

void check(const Case& c, const Outcome& o, uint64_t seed) {
  expect_matches_reference(c.name(), c.dtype, o, seed);
}

class Sm80Attention : public ::testing::TestWithParam<Case> {};

TEST_P(Sm80Attention, MatchesFp64Reference) {
  const std::string why = no_sm80_device_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  const Case& c = GetParam();
  const uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  const Outcome o = run_case(c, rng);
  check(c, o, seed);
  if (o.ok) {
    // The kernel that ran is named by the head dim it was compiled for (the next compiled one
    // at or above the problem's).
    EXPECT_EQ(o.path.rfind("sm80_d", 0), 0u) << o.path;
    EXPECT_NE(o.path.find(c.dtype == DType::bf16 ? "_bf16" : "_f16"), std::string::npos) << o.path;
  }
}

constexpr int64_t kDims[] = {64, 96, 128, 160, 192, 256};

std::vector<Case> all_cases() {
  std::vector<Case> v;
  const DType dts[] = {DType::bf16, DType::fp16};
  // Every compiled head dim and dtype over ragged lengths, causal and not.
  for (int64_t d : kDims)
    for (DType dt : dts)
      for (int64_t L : {1, 17, 127, 1000, 4097})
        for (bool causal : {false, true}) v.push_back({1, 2, 2, L, L, d, causal, dt});
  // Lq != Lk causal both ways (bottom-right; rows that see no key), GQA 8:1 and 4:1 (K/V by head
  // index), BHSD, batches, padded q/k/v rows, odd output rows (2-byte stores), no LSE.
  for (int64_t d : kDims)
    for (DType dt : dts) {
      v.push_back({1, 2, 2, 100, 1000, d, true, dt});
      v.push_back({1, 2, 2, 1000, 100, d, true, dt});
      v.push_back({1, 2, 2, 17, 4097, d, true, dt});
      v.push_back({1, 2, 2, 300, 77, d, false, dt});
      v.push_back({2, 16, 2, 300, 300, d, true, dt});
      v.push_back({2, 8, 1, 257, 513, d, false, dt, true});
      v.push_back({3, 4, 4, 1000, 1000, d, true, dt, true});
      v.push_back({2, 4, 2, 200, 333, d, true, dt, false, 8, 3});
      v.push_back({1, 3, 1, 129, 65, d, false, dt, true, 16, 1, false});
    }
  // Head dims between the compiled ones run on the next one with zero-filled columns.
  for (int64_t d : {8, 40, 80, 136, 200, 248})
    for (DType dt : dts) {
      v.push_back({1, 2, 1, 127, 300, d, true, dt});
      v.push_back({2, 2, 2, 65, 65, d, false, dt, true});
    }
  // No keys at all: every row empty (zeros, LSE -inf).
  v.push_back({1, 2, 2, 5, 0, 128, false, DType::bf16});
  v.push_back({1, 2, 2, 5, 0, 64, true, DType::fp16});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Shapes, Sm80Attention, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name(); });

// Automatic dispatch: the sm_90a kernel where it applies, else the sm80 kernel, else the
// fallback. Head dim 160 has no sm_90a kernel, so on Hopper it goes to sm80 too; on cc 8.x every
// served shape does.
TEST(Sm80Dispatch, AutomaticPicksTheSm80Kernel) {
  const std::string why = no_sm80_device_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  const int cc = compute_capability();
  struct Want {
    int64_t d;
    const char* path;
  };
  std::vector<Want> wants = {{160, "sm80_d160_bf16"}, {80, "sm80_d96_bf16"}, {40, "sm80_d64_bf16"}};
  if (cc / 10 == 8) wants.push_back({128, "sm80_d128_bf16"});
  for (const Want& w : wants) {
    Case c{2, 4, 2, 300, 500, w.d, true, DType::bf16};
    c.path = kc::Path::automatic;
    const uint64_t seed = fresh_seed();
    std::mt19937_64 rng(seed);
    const Outcome o = run_case(c, rng);
    check(c, o, seed);
    EXPECT_EQ(o.path, w.path) << "head dim " << w.d << " on cc " << cc;
  }
}

// A misaligned base pointer: automatic falls back to the simple kernel, a forced sm80 is refused
// with the reason, and the refusal launches nothing.
TEST(Sm80Dispatch, MisalignedPointersFallBackOrAreRefused) {
  const std::string why = no_sm80_device_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  const int64_t L = 64, D = 64, H = 2;
  DeviceBuffer q(L * H * D * 2 + 16), k(L * H * D * 2), v(L * H * D * 2), o(L * H * D * 2);
  ASSERT_TRUE(q.ptr && k.ptr && v.ptr && o.ptr);
  cudaMemset(q.ptr, 0, L * H * D * 2 + 16);
  cudaMemset(k.ptr, 0, L * H * D * 2);
  cudaMemset(v.ptr, 0, L * H * D * 2);
  AttentionParams p;
  p.batch = 1;
  p.heads_q = p.heads_kv = H;
  p.seqlen_q = p.seqlen_k = L;
  p.head_dim = D;
  p.dtype = DType::fp16;
  p.softmax_scale = 0.125f;
  strides_of(false, 1, L, H, D, 0, p.q_stride);
  strides_of(false, 1, L, H, D, 0, p.k_stride);
  strides_of(false, 1, L, H, D, 0, p.v_stride);
  strides_of(false, 1, L, H, D, 0, p.o_stride);
  p.q = static_cast<const char*>(q.ptr) + 2;  // 2-byte aligned only
  p.k = k.ptr;
  p.v = v.ptr;
  p.out = o.ptr;
  kc::LaunchOptions opt;
  opt.path = kc::Path::sm80;
  kc::LaunchResult r = kc::attention_forward(p, nullptr, opt);
  EXPECT_EQ(r.status, kc::LaunchStatus::unsupported);
  EXPECT_NE(r.message.find("16-byte"), std::string::npos) << r.message;
  opt.path = kc::Path::automatic;
  r = kc::attention_forward(p, nullptr, opt);
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_STREQ(r.path, "fallback");
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

// Capability answers need no device.
TEST(Sm80Support, ReasonsWithoutTouchingTheDevice) {
  AttentionParams p;
  p.batch = 1;
  p.heads_q = 8;
  p.heads_kv = 2;
  p.seqlen_q = p.seqlen_k = 1000;
  p.head_dim = 128;
  p.dtype = DType::bf16;
  p.softmax_scale = 0.088f;
  auto set_strides = [&](int64_t pad) {
    strides_of(false, 1, p.seqlen_q, p.heads_q, p.head_dim, pad, p.q_stride);
    strides_of(false, 1, p.seqlen_k, p.heads_kv, p.head_dim, pad, p.k_stride);
    strides_of(false, 1, p.seqlen_k, p.heads_kv, p.head_dim, pad, p.v_stride);
    strides_of(false, 1, p.seqlen_q, p.heads_q, p.head_dim, 0, p.o_stride);
  };
  set_strides(0);
  const auto sm80 = [&](int major, int minor) {
    return kc::unsupported_reason(p, major, minor, kc::Path::sm80);
  };
  // Served on Ampere (8.0, 8.6), Ada (8.9) and Hopper (9.0), for every compiled head dim and the
  // multiples of 8 between them.
  for (int64_t d : {8, 40, 64, 80, 96, 128, 136, 160, 192, 200, 256}) {
    p.head_dim = d;
    set_strides(0);
    for (int cc : {80, 86, 89, 90}) EXPECT_EQ(sm80(cc / 10, cc % 10), "") << "d=" << d << " cc=" << cc;
  }
  p.head_dim = 160;
  set_strides(0);
  // On Hopper the sm_90a kernel doesn't take head dim 160, so automatic gets the sm80 kernel.
  EXPECT_NE(kc::unsupported_reason(p, 9, 0, kc::Path::sm90), "");
  EXPECT_EQ(kc::unsupported_reason(p, 9, 0, kc::Path::automatic), "");
  p.head_dim = 128;
  set_strides(0);
  EXPECT_EQ(kc::unsupported_reason(p, 8, 6, kc::Path::automatic), "");
  EXPECT_NE(kc::unsupported_reason(p, 8, 0, kc::Path::sm90), "");
  // Too old a device.
  EXPECT_NE(sm80(7, 5).find("8.0"), std::string::npos) << sm80(7, 5);
  // fp32.
  p.dtype = DType::fp32;
  EXPECT_NE(sm80(8, 0), "");
  p.dtype = DType::bf16;
  // A head dim that is not a multiple of 8: the reason says so and names the fallback.
  p.head_dim = 100;
  set_strides(0);
  std::string why = sm80(8, 0);
  EXPECT_NE(why.find("multiple of 8"), std::string::npos) << why;
  EXPECT_NE(why.find("fallback"), std::string::npos) << why;
  EXPECT_EQ(kc::unsupported_reason(p, 8, 0, kc::Path::automatic), "");  // the fallback serves it
  // Past 256.
  p.head_dim = 264;
  set_strides(0);
  EXPECT_NE(sm80(8, 0), "");
  // Rows that are not 16-byte steps (cp.async).
  p.head_dim = 128;
  set_strides(4);
  why = sm80(8, 0);
  EXPECT_NE(why.find("16-byte"), std::string::npos) << why;
  set_strides(8);
  EXPECT_EQ(sm80(8, 0), "");
  // Output strides may be anything (2-byte stores).
  p.o_stride[1] += 3;
  EXPECT_EQ(sm80(8, 0), "");
  // GQA needs heads_q a multiple of heads_kv.
  p.heads_kv = 3;
  set_strides(0);
  EXPECT_NE(sm80(8, 0), "");
  p.heads_kv = 2;
  set_strides(0);
  // The scale is folded into exp2 after the row max: it must be positive.
  p.softmax_scale = 0.f;
  EXPECT_NE(sm80(8, 0), "");
  p.softmax_scale = 0.088f;
  // Sequences past 2^30.
  p.seqlen_k = (int64_t(1) << 30) + 1;
  EXPECT_NE(sm80(8, 0), "");
}

}  // namespace

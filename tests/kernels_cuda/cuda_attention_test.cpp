// Tests of the CUDA attention kernels (kernels/cuda) and the cuda_fa3 plugin against an fp64
// reference: fresh random inputs every run, the output poisoned with NaN before each launch and
// checked fully written, relative error per dtype, the log-sum-exp checked too. Without a CUDA
// device every GPU test skips with the reason; the plugin must still load and say why not.
#include <pfa/kernels/cuda/attention_cuda.h>
#include <pfa/plugin_abi.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "attention_reference.h"

namespace {

using namespace pfa::cuda_test;

bool is_hopper() { return compute_capability() == 90; }

struct Case {
  int64_t batch, heads_q, heads_kv, seqlen_q, seqlen_k, head_dim;
  bool causal;
  DType dtype;
  bool bhsd;
  kc::Path path;
  int variant;  // sm90 variant, -1 = default
  int persistent = -1;  // sm90: -1 chosen by shape, 0 one CTA per tile, 1 one CTA per SM
  int64_t out_pad = 0;  // extra elements per output row step

  std::string name() const {
    std::ostringstream s;
    s << (path == kc::Path::fallback ? "fallback" : path == kc::Path::sm90 ? "sm90" : "auto");
    if (variant >= 0) s << "_v" << variant;
    if (persistent >= 0) s << (persistent == 2 ? "_lpt" : persistent ? "_persistent" : "_grid");
    s << "_b" << batch << "_h" << heads_q << "x" << heads_kv << "_q" << seqlen_q << "_k" << seqlen_k
      << "_d" << head_dim << (causal ? "_causal" : "") << (dtype == DType::bf16 ? "_bf16" : "_fp16")
      << (bhsd ? "_bhsd" : "_bshd");
    if (out_pad > 0) s << "_opad" << out_pad;
    return s.str();
  }
};

// Lets GoogleTest (and ctest's case list) show a case by its name rather than its bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name(); }

// Runs one case on the GPU and compares with the fp64 reference.
Outcome run_case(const Case& c, std::mt19937_64& rng) {
  kc::LaunchOptions opt;
  opt.path = c.path;
  opt.sm90_variant = c.variant;
  opt.persistent = c.persistent;
  const Problem pr{c.batch,  c.heads_q, c.heads_kv, c.seqlen_q, c.seqlen_k, c.head_dim,
                   c.causal, c.dtype,   c.bhsd,     0,          c.out_pad};
  return run_against_reference(pr, opt, rng);
}

class CudaAttention : public ::testing::TestWithParam<Case> {};

TEST_P(CudaAttention, MatchesFp64Reference) {
  const std::string why = no_device_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  const Case& c = GetParam();
  if (c.path == kc::Path::sm90 && !is_hopper()) GTEST_SKIP() << "not a Hopper GPU (sm_90)";
  if (c.path == kc::Path::sm90 &&
      kc::sm90_variant_name(int(c.head_dim), c.dtype == DType::bf16,
                            c.variant < 0 ? kc::sm90_default_variant(int(c.head_dim)) : c.variant) ==
          "not compiled")
    GTEST_SKIP() << "head dim " << c.head_dim << " not compiled in this build (PFA_FA3_HEAD_DIMS)";
  const uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  const Outcome o = run_case(c, rng);
  expect_matches_reference(c.name(), c.dtype, o, seed);
}

std::vector<Case> all_cases() {
  std::vector<Case> v;
  const DType dts[] = {DType::bf16, DType::fp16};
  // Every sm_90a head dim and dtype over the ragged lengths, causal and not (default variant).
  for (int64_t d : {64, 96, 128, 192, 256})
    for (DType dt : dts)
      for (int64_t L : {1, 17, 127, 1000, 4097})
        for (bool causal : {false, true})
          v.push_back({1, 2, 2, L, L, d, causal, dt, false, kc::Path::sm90, -1});
  // Lq != Lk with causal (bottom-right; rows that see no key), GQA 8:1, BHSD, batches.
  for (int64_t d : {64, 96, 128, 192, 256})
    for (DType dt : dts) {
      v.push_back({1, 2, 2, 100, 1000, d, true, dt, false, kc::Path::sm90, -1});
      v.push_back({1, 2, 2, 1000, 100, d, true, dt, false, kc::Path::sm90, -1});
      v.push_back({1, 2, 2, 17, 4097, d, true, dt, false, kc::Path::sm90, -1});
      v.push_back({2, 16, 2, 300, 300, d, true, dt, false, kc::Path::sm90, -1});
      v.push_back({2, 8, 1, 257, 513, d, false, dt, true, kc::Path::sm90, -1});
      v.push_back({3, 4, 4, 1000, 1000, d, true, dt, true, kc::Path::sm90, -1});
    }
  // Every compiled variant on a few shapes.
  for (int var = 0; var < kc::sm90_variant_count(); ++var)
    for (int64_t d : {64, 96, 128, 192, 256})
      for (DType dt : dts) {
        v.push_back({1, 2, 2, 1000, 1000, d, true, dt, false, kc::Path::sm90, var});
        v.push_back({2, 4, 2, 700, 1500, d, false, dt, true, kc::Path::sm90, var});
        v.push_back({1, 2, 1, 333, 77, d, true, dt, false, kc::Path::sm90, var});
      }
  // Persistent (one CTA per SM walking many tiles, some with no visible key) and one-CTA-per-tile
  // launches of every variant.
  for (int var = 0; var < kc::sm90_variant_count(); ++var)
    for (int64_t d : {64, 128, 256})
      for (int pers : {0, 1, 2}) {
        v.push_back({2, 16, 4, 1000, 1000, d, true, DType::bf16, false, kc::Path::sm90, var, pers});
        v.push_back({3, 16, 2, 900, 300, d, true, DType::fp16, true, kc::Path::sm90, var, pers});
        v.push_back({2, 32, 32, 513, 513, d, false, DType::bf16, false, kc::Path::sm90, var, pers});
      }
  // Head dims 96 (64-byte swizzle) and 192 walked persistently, once per variant.
  for (int var = 0; var < kc::sm90_variant_count(); ++var)
    for (int64_t d : {96, 192})
      v.push_back({2, 16, 4, 1000, 1000, d, true, DType::bf16, false, kc::Path::sm90, var, 1});
  // Output rows padded: by 8 elements the output still goes out through shared memory and TMA
  // (which must leave the padding alone; head dims 192 and 256 in two rounds); by 2 its strides
  // rule TMA out and threads store it.
  for (int64_t d : {64, 96, 128, 192, 256})
    for (int64_t pad : {2, 8})
      for (int pers : {0, 1}) {
        v.push_back({2, 4, 2, 1000, 1000, d, true, DType::bf16, false, kc::Path::sm90, -1, pers, pad});
        v.push_back({1, 4, 4, 300, 700, d, false, DType::fp16, true, kc::Path::sm90, -1, pers, pad});
      }
  // The fallback kernel, including head dims the sm_90a kernel doesn't serve.
  for (int64_t d : {40, 64, 96, 128, 256})
    for (DType dt : dts) {
      v.push_back({1, 2, 2, 127, 127, d, true, dt, false, kc::Path::fallback, -1});
      v.push_back({2, 8, 2, 300, 1000, d, true, dt, true, kc::Path::fallback, -1});
      v.push_back({1, 2, 1, 1000, 100, d, false, dt, false, kc::Path::fallback, -1});
    }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaAttention, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name(); });

TEST(CudaAttentionSupport, ReasonsWithoutTouchingTheDevice) {
  AttentionParams p;
  p.batch = 1;
  p.heads_q = 2;
  p.heads_kv = 2;
  p.seqlen_q = p.seqlen_k = 128;
  p.head_dim = 128;
  p.dtype = DType::fp32;
  p.softmax_scale = 0.1f;
  EXPECT_NE(kc::unsupported_reason(p, 9, 0), "");
  p.dtype = DType::bf16;
  strides_of(false, 1, 128, 2, 128, 0, p.q_stride);
  strides_of(false, 1, 128, 2, 128, 0, p.k_stride);
  strides_of(false, 1, 128, 2, 128, 0, p.v_stride);
  strides_of(false, 1, 128, 2, 128, 0, p.o_stride);
  EXPECT_EQ(kc::unsupported_reason(p, 9, 0, kc::Path::sm90), "");
  EXPECT_NE(kc::unsupported_reason(p, 8, 0, kc::Path::sm90), "");
  EXPECT_EQ(kc::unsupported_reason(p, 8, 0, kc::Path::automatic), "");
  p.head_dim = 96;
  EXPECT_EQ(kc::unsupported_reason(p, 9, 0, kc::Path::sm90), "");
  p.head_dim = 80;
  EXPECT_NE(kc::unsupported_reason(p, 9, 0, kc::Path::sm90), "");
  p.head_dim = 300;
  EXPECT_NE(kc::unsupported_reason(p, 9, 0), "");
}

// ---- the plugin --------------------------------------------------------------------------
struct Plugin {
  void* handle = nullptr;
  const pfa_plugin_api* api = nullptr;
  pfa_context* context = nullptr;
  std::string error;
  Plugin() {
    handle = dlopen(PFA_CUDA_FA3_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      error = dlerror();
      return;
    }
    auto entry = reinterpret_cast<pfa_plugin_entry_fn>(dlsym(handle, PFA_PLUGIN_ENTRY_SYMBOL));
    if (entry == nullptr) {
      error = "no entry symbol";
      return;
    }
    pfa_host_info host{sizeof(pfa_host_info), PFA_ABI_VERSION_MAJOR, PFA_ABI_VERSION_MINOR, "test"};
    char msg[256] = {};
    if (entry(&host, &api, msg, sizeof msg) != PFA_STATUS_OK) {
      error = msg;
      return;
    }
    if (api->create(&host, &context, msg, sizeof msg) != PFA_STATUS_OK) error = msg;
  }
  ~Plugin() {
    if (api != nullptr && context != nullptr) api->destroy(context);
    // Not dlclose'd: the CUDA runtime it pulled in may still hold state.
  }
};

pfa_problem problem_of(int64_t L, int64_t D, int32_t dtype, bool causal) {
  pfa_problem p{};
  p.struct_size = sizeof p;
  p.batch = 2;
  p.heads_q = 4;
  p.heads_kv = 2;
  p.seqlen_q = p.seqlen_k = L;
  p.head_dim = D;
  p.dtype = dtype;
  p.layout = PFA_LAYOUT_BSHD;
  p.causal = causal;
  p.want_lse = 1;
  p.softmax_scale = float(1.0 / std::sqrt(double(D)));
  p.device_type = kDLCUDA;
  p.device_id = 0;
  return p;
}

TEST(CudaFa3Plugin, LoadsAndAnswersEverywhere) {
  Plugin pl;
  ASSERT_TRUE(pl.error.empty()) << pl.error;
  EXPECT_STREQ(pl.api->name, "cuda_fa3");
  EXPECT_EQ(pl.api->device_types, 1u << kDLCUDA);
  pfa_problem p = problem_of(1024, 128, PFA_DTYPE_BF16, true);
  char reason[256] = {};
  const pfa_status st = pl.api->supports(pl.context, &p, reason, sizeof reason);
  const std::string why = no_device_reason();
  if (!why.empty()) {
    EXPECT_EQ(st, PFA_STATUS_UNSUPPORTED);
    EXPECT_NE(std::string(reason).find("no CUDA device"), std::string::npos) << reason;
  }
  pfa_estimate est{sizeof(pfa_estimate), 0, 0, 0};
  EXPECT_EQ(pl.api->estimate(pl.context, &p, &est, reason, sizeof reason), PFA_STATUS_OK);
  EXPECT_GT(est.latency_s, 0);
  p.dtype = PFA_DTYPE_FP32;
  EXPECT_EQ(pl.api->supports(pl.context, &p, reason, sizeof reason), PFA_STATUS_UNSUPPORTED);
  p.device_type = kDLCPU;
  EXPECT_EQ(pl.api->supports(pl.context, &p, reason, sizeof reason), PFA_STATUS_UNSUPPORTED);
}

TEST(CudaFa3Plugin, RunsThroughTheAbi) {
  const std::string why = no_device_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  Plugin pl;
  ASSERT_TRUE(pl.error.empty()) << pl.error;
  pfa_device_info info{};
  info.struct_size = sizeof info;
  char msg[256] = {};
  ASSERT_EQ(pl.api->device_info(pl.context, kDLCUDA, 0, &info, msg, sizeof msg), PFA_STATUS_OK) << msg;
  std::printf("[ device ] %s | %s\n", info.name, info.detail);
  pfa_problem p = problem_of(300, 128, PFA_DTYPE_BF16, true);
  if (pl.api->supports(pl.context, &p, msg, sizeof msg) != PFA_STATUS_OK)
    GTEST_SKIP() << "plugin does not serve it here: " << msg;
  const int64_t nq = p.batch * p.seqlen_q * p.heads_q * p.head_dim;
  const int64_t nk = p.batch * p.seqlen_k * p.heads_kv * p.head_dim;
  std::mt19937_64 rng(std::random_device{}());
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<uint16_t> hq(nq), hk(nk), hv(nk);
  for (auto& x : hq) x = to_bits(normal(rng), DType::bf16);
  for (auto& x : hk) x = to_bits(normal(rng), DType::bf16);
  for (auto& x : hv) x = to_bits(normal(rng), DType::bf16);
  DeviceBuffer dq(nq * 2), dk(nk * 2), dv(nk * 2), dout(nq * 2), dlse(p.batch * p.heads_q * p.seqlen_q * 4);
  cudaMemcpy(dq.ptr, hq.data(), nq * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(dk.ptr, hk.data(), nk * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(dv.ptr, hv.data(), nk * 2, cudaMemcpyHostToDevice);
  cudaMemset(dout.ptr, 0xff, nq * 2);
  int64_t qshape[4] = {p.batch, p.seqlen_q, p.heads_q, p.head_dim};
  int64_t kshape[4] = {p.batch, p.seqlen_k, p.heads_kv, p.head_dim};
  int64_t qstr[4] = {p.seqlen_q * p.heads_q * p.head_dim, p.heads_q * p.head_dim, p.head_dim, 1};
  int64_t kstr[4] = {p.seqlen_k * p.heads_kv * p.head_dim, p.heads_kv * p.head_dim, p.head_dim, 1};
  int64_t lshape[3] = {p.batch, p.heads_q, p.seqlen_q};
  int64_t lstr[3] = {p.heads_q * p.seqlen_q, p.seqlen_q, 1};
  const DLDevice dev{kDLCUDA, 0};
  const DLDataType bf16{kDLBfloat, 16, 1}, f32{kDLFloat, 32, 1};
  DLTensor tq{dq.ptr, dev, 4, bf16, qshape, qstr, 0}, tk{dk.ptr, dev, 4, bf16, kshape, kstr, 0},
      tv{dv.ptr, dev, 4, bf16, kshape, kstr, 0}, to{dout.ptr, dev, 4, bf16, qshape, qstr, 0},
      tl{dlse.ptr, dev, 3, f32, lshape, lstr, 0};
  pfa_run_args args{sizeof(pfa_run_args), &p, &tq, &tk, &tv, &to, &tl, nullptr};
  pfa_run_result result{};
  result.struct_size = sizeof result;
  ASSERT_EQ(pl.api->run(pl.context, &args, &result, msg, sizeof msg), PFA_STATUS_OK) << msg;
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::printf("[ plugin ] ran %s\n", result.detail);
  std::vector<uint16_t> hout(nq);
  cudaMemcpy(hout.data(), dout.ptr, nq * 2, cudaMemcpyDeviceToHost);
  int64_t unwritten = 0;
  for (uint16_t b : hout)
    if (!std::isfinite(from_bits(b, DType::bf16))) ++unwritten;
  EXPECT_EQ(unwritten, 0);
}

}  // namespace

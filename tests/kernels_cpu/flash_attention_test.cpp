// cpu_flash kernel tests through AttentionParams (no engine): every instruction-set path this CPU
// can run, every dtype, odd sizes, GQA, causal with Lq != Lk, three layouts, LSE. Outputs start
// poisoned and are checked in full against the fp64 reference.
#include <pfa/kernels/cpu/flash_attention.h>

#include <attention_case.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace pfa::test {
namespace {

using kernels::AttentionParams;
using kernels::cpu::Isa;

struct Shape {
  int64_t batch, heads_q, heads_kv, seqlen_q, seqlen_k, head_dim;
  bool causal;
  pfa_layout layout;
  bool padded;
};

AttentionParams params_for(AttentionCase& c) {
  const Problem& p = c.problem;
  AttentionParams a;
  a.q = c.q.data();
  a.k = c.k.data();
  a.v = c.v.data();
  a.out = c.out.data();
  a.lse = p.want_lse ? static_cast<float*>(c.lse.data()) : nullptr;
  a.batch = p.batch;
  a.heads_q = p.heads_q;
  a.heads_kv = p.heads_kv;
  a.seqlen_q = p.seqlen_q;
  a.seqlen_k = p.seqlen_k;
  a.head_dim = p.head_dim;
  // Tensors are stored [b, s, h, d] (BSHD) or [b, h, s, d] (BHSD); params want batch, seq, head.
  auto strides = [&](const HostTensor& t, int64_t* out) {
    const auto& s = t.strides();
    out[0] = s[0];
    out[1] = c.layout == PFA_LAYOUT_BHSD ? s[2] : s[1];
    out[2] = c.layout == PFA_LAYOUT_BHSD ? s[1] : s[2];
  };
  strides(c.q, a.q_stride);
  strides(c.k, a.k_stride);
  strides(c.v, a.v_stride);
  strides(c.out, a.o_stride);
  a.dtype = static_cast<kernels::DType>(p.dtype);
  a.causal = p.causal != 0;
  a.softmax_scale = p.softmax_scale;
  return a;
}

// Runs one shape on one path and checks output and LSE against the fp64 reference.
void check_shape(Isa isa, pfa_dtype dtype, const Shape& s, std::mt19937_64& rng) {
  Problem problem = make_problem(s.batch, s.heads_q, s.heads_kv, s.seqlen_q, s.seqlen_k,
                                 s.head_dim, dtype, s.causal);
  problem.want_lse = 1;
  problem.layout = s.layout;
  AttentionCase c = make_case(problem, s.layout, rng, s.padded);
  const AttentionParams params = params_for(c);
  const Isa ran = kernels::cpu::flash_attention(params, isa);
  EXPECT_EQ(ran, kernels::cpu::resolve_isa(isa, params.dtype));
  const Reference ref = reference_attention(c);
  const double err = relative_error(c, ref);
  const double lse_err = lse_max_error(c, ref);
  if (std::getenv("PFA_TEST_VERBOSE") != nullptr)
    std::printf("%-12s %s: err %.2e lse %.2e\n", kernels::cpu::isa_name(ran), describe(c).c_str(),
                err, lse_err);
  EXPECT_LT(err, tolerance(dtype)) << describe(c) << " on " << kernels::cpu::isa_name(ran);
  EXPECT_LT(lse_err, 1e-3) << describe(c) << " on " << kernels::cpu::isa_name(ran);
  EXPECT_EQ(c.out.count_non_finite(), 0) << describe(c);
}

class FlashCpu : public ::testing::TestWithParam<std::tuple<Isa, pfa_dtype>> {
 protected:
  void SetUp() override {
    const Isa isa = std::get<0>(GetParam());
    if (!kernels::cpu::isa_available(isa)) {
      GTEST_SKIP() << "this CPU cannot run the " << kernels::cpu::isa_name(isa) << " path";
    }
    seed_ = fresh_seed();
    std::printf("seed %llu (replay with PFA_TEST_SEED)\n", static_cast<unsigned long long>(seed_));
  }
  uint64_t seed_ = 0;
};

TEST_P(FlashCpu, OddShapesLayoutsAndMasks) {
  const auto [isa, dtype] = GetParam();
  std::mt19937_64 rng(seed_);
  const std::vector<Shape> shapes = {
      {1, 2, 1, 17, 17, 40, false, PFA_LAYOUT_BSHD, false},
      {2, 4, 2, 17, 33, 72, true, PFA_LAYOUT_BHSD, false},    // causal, Lq < Lk
      {1, 3, 3, 70, 17, 96, true, PFA_LAYOUT_BSHD, true},     // causal, Lq > Lk: masked rows
      {1, 4, 1, 1, 1, 128, false, PFA_LAYOUT_BSHD, false},    // MQA, one key
      {1, 2, 2, 1, 300, 256, true, PFA_LAYOUT_BHSD, true},    // decode step
      {1, 8, 2, 130, 130, 128, true, PFA_LAYOUT_BSHD, false}, // GQA 4, two tiles
      {1, 2, 2, 65, 129, 1, false, PFA_LAYOUT_BSHD, true},    // head_dim 1
      {1, 1, 1, 33, 97, 255, true, PFA_LAYOUT_BHSD, false},   // head_dim 255
      {3, 6, 3, 40, 200, 24, false, PFA_LAYOUT_BHSD, true},
      {1, 1, 1, 1000, 999, 40, true, PFA_LAYOUT_BHSD, true},  // long, causal, Lq > Lk by one
      // Decode (Lq <= 8: all query heads of a key/value head walk the keys together)
      {2, 8, 2, 8, 517, 64, true, PFA_LAYOUT_BSHD, true},     // GQA 4 x 8 rows, causal
      {1, 16, 2, 5, 700, 96, false, PFA_LAYOUT_BHSD, false},  // GQA 8, 40 rows
      {1, 4, 4, 3, 2, 32, true, PFA_LAYOUT_BSHD, true},       // causal, Lq > Lk: a masked row
      {1, 32, 2, 6, 150, 40, true, PFA_LAYOUT_BSHD, true},    // 96 rows: too many, tiled path
  };
  for (const Shape& s : shapes) check_shape(isa, dtype, s, rng);
}

std::string name_of(const ::testing::TestParamInfo<FlashCpu::ParamType>& info) {
  return std::string(kernels::cpu::isa_name(std::get<0>(info.param))) + "_" +
         dtype_name(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(
    AllPaths, FlashCpu,
    ::testing::Combine(::testing::Values(Isa::scalar, Isa::avx2, Isa::avx512, Isa::avx512_bf16,
                                         Isa::amx),
                       ::testing::Values(PFA_DTYPE_FP32, PFA_DTYPE_FP16, PFA_DTYPE_BF16)),
    name_of);

// A long sequence once per dtype on the fastest path (the fp64 reference is O(L^2 D)).
class FlashCpuLong : public ::testing::TestWithParam<pfa_dtype> {};

TEST_P(FlashCpuLong, ThousandTokens) {
  const pfa_dtype dtype = GetParam();
  const uint64_t seed = fresh_seed();
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  const Isa isa = kernels::cpu::best_isa(static_cast<kernels::DType>(dtype));
  check_shape(isa, dtype, {1, 2, 1, 1000, 1000, 96, true, PFA_LAYOUT_BSHD, false}, rng);
  check_shape(isa, dtype, {1, 1, 1, 1000, 1000, 128, false, PFA_LAYOUT_BHSD, true}, rng);
}

INSTANTIATE_TEST_SUITE_P(BestPath, FlashCpuLong,
                         ::testing::Values(PFA_DTYPE_FP32, PFA_DTYPE_FP16, PFA_DTYPE_BF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// run() is declared thread-safe: concurrent calls on one set of inputs give the same output.
TEST(FlashCpuThreads, ConcurrentCallsAgree) {
  const uint64_t seed = fresh_seed();
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  Problem problem = make_problem(1, 4, 2, 200, 300, 64, PFA_DTYPE_BF16, true);
  problem.want_lse = 1;
  AttentionCase a = make_case(problem, PFA_LAYOUT_BSHD, rng);
  AttentionCase b = a;  // same inputs, its own output buffers
  b.out.poison();
  AttentionParams pa = params_for(a), pb = params_for(b);
  pb.out = b.out.data();
  pb.lse = static_cast<float*>(b.lse.data());
  pb.q = a.q.data();
  pb.k = a.k.data();
  pb.v = a.v.data();
  std::thread t1([&] { for (int i = 0; i < 20; ++i) kernels::cpu::flash_attention(pa); });
  std::thread t2([&] { for (int i = 0; i < 20; ++i) kernels::cpu::flash_attention(pb); });
  t1.join();
  t2.join();
  const Reference ref = reference_attention(a);
  EXPECT_LT(relative_error(a, ref), tolerance(PFA_DTYPE_BF16));
  EXPECT_EQ(std::memcmp(a.out.data(), b.out.data(),
                        static_cast<size_t>(a.out.numel()) * sizeof(uint16_t)),
            0);
}

TEST(FlashCpuDispatch, NamesAndFallbacks) {
  using kernels::DType;
  EXPECT_STREQ(kernels::cpu::isa_name(Isa::amx), "amx");
  EXPECT_TRUE(kernels::cpu::isa_available(Isa::scalar));
  // bf16 matrix-product paths never serve fp32 or fp16 inputs.
  for (DType d : {DType::fp32, DType::fp16}) {
    const Isa best = kernels::cpu::best_isa(d);
    EXPECT_NE(best, Isa::avx512_bf16);
    EXPECT_NE(best, Isa::amx);
    EXPECT_EQ(kernels::cpu::resolve_isa(Isa::amx, d), kernels::cpu::resolve_isa(Isa::avx512, d));
  }
  EXPECT_TRUE(kernels::cpu::isa_available(kernels::cpu::best_isa(DType::bf16)));
}

TEST(FlashCpuDispatch, RejectsBadParams) {
  float x[64] = {};
  AttentionParams p;
  p.q = p.k = p.v = x;
  p.out = x;
  p.batch = p.heads_q = p.heads_kv = p.seqlen_q = p.seqlen_k = 1;
  p.head_dim = 300;
  EXPECT_THROW(kernels::cpu::flash_attention(p), std::invalid_argument);
  p.head_dim = 8;
  p.heads_q = 3;
  p.heads_kv = 2;
  EXPECT_THROW(kernels::cpu::flash_attention(p), std::invalid_argument);
  p.heads_q = 1;
  p.heads_kv = 1;
  p.v = nullptr;
  EXPECT_THROW(kernels::cpu::flash_attention(p), std::invalid_argument);
  for (Isa isa : {Isa::avx2, Isa::avx512, Isa::avx512_bf16, Isa::amx}) {
    if (kernels::cpu::isa_available(isa)) continue;
    p.v = x;
    EXPECT_THROW(kernels::cpu::flash_attention(p, isa), std::invalid_argument);
  }
}

}  // namespace
}  // namespace pfa::test

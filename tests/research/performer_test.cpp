// FAVOR+ attention: converges to exact attention as features grow (where the input regime allows),
// is deterministic under a seed, handles GQA, causal masks, fully masked rows and every dtype.
#include "research_case.h"

#include <pfa/research/performer.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

namespace pfa {
namespace {

using research::PerformerConfig;

double run_error(const Problem& problem, int64_t features, uint64_t data_seed,
                 uint64_t feature_seed = 7) {
  std::mt19937_64 rng(data_seed);
  auto c = test::make_case(problem, PFA_LAYOUT_BSHD, rng);
  PerformerConfig config;
  config.features = features;
  config.seed = feature_seed;
  research::performer_attention(test::params_of(c, false), config);
  return test::relative_error(c, test::reference_attention(c));
}

TEST(Performer, ConvergesAsFeaturesGrowInTheEasyRegime) {
  Problem p = make_problem(1, 2, 2, 256, 256, 64, PFA_DTYPE_FP32, false);
  test::set_regime(p, 1.0);  // softmax_scale * |q|^2 = 1: where FAVOR+ is meant to work
  const uint64_t seed = test::fresh_seed();
  double previous = 1e9;
  double errors[4];
  int i = 0;
  for (int64_t m : {16, 64, 256, 1024}) {
    double sum = 0;
    for (uint64_t s = 0; s < 3; ++s) sum += run_error(p, m, seed + s, 100 + s);
    errors[i++] = sum / 3;
    SCOPED_TRACE("features " + std::to_string(m));
    EXPECT_LT(errors[i - 1], previous * 1.05);
    previous = errors[i - 1];
  }
  // Monte-Carlo rate: 64x more features should cut the error by about 8x; ask for 3x.
  EXPECT_LT(errors[3], errors[0] / 3);
  EXPECT_LT(errors[3], 0.12);
}

TEST(Performer, ErrorModelIsConservativeOnRandomInputs) {
  const uint64_t seed = test::fresh_seed();
  for (double regime : {0.5, 1.0, 2.0, 3.0}) {
    for (int64_t m : {64, 256}) {
      Problem p = make_problem(1, 2, 2, 200, 200, 64, PFA_DTYPE_FP32, false);
      test::set_regime(p, regime);
      const double error = run_error(p, m, seed);
      SCOPED_TRACE("regime " + std::to_string(regime) + " features " + std::to_string(m));
      EXPECT_LT(error, research::performer_expected_error(regime, m, 200));
    }
  }
}

TEST(Performer, DeterministicUnderASeed) {
  Problem p = make_problem(1, 4, 2, 64, 64, 32, PFA_DTYPE_FP32, true);
  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(p, PFA_LAYOUT_BSHD, rng);
  PerformerConfig config;
  config.features = 64;
  auto params = test::params_of(c, false);
  research::performer_attention(params, config);
  const std::vector<unsigned char> first(static_cast<unsigned char*>(c.out.data()),
                                         static_cast<unsigned char*>(c.out.data()) +
                                             c.out.storage_bytes());
  research::performer_attention(params, config);
  EXPECT_EQ(std::memcmp(first.data(), c.out.data(), first.size()), 0) << "same seed, same output";
  config.seed += 1;
  research::performer_attention(params, config);
  EXPECT_NE(std::memcmp(first.data(), c.out.data(), first.size()), 0) << "new seed, new features";
}

TEST(Performer, CausalGqaMasksRowsThatSeeNothing) {
  // Lq > Lk, causal bottom-right: the first Lq - Lk rows see no key.
  Problem p = make_problem(2, 4, 2, 40, 24, 48, PFA_DTYPE_FP32, true);
  test::set_regime(p, 0.5);
  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(p, PFA_LAYOUT_BHSD, rng, /*padded=*/true);
  PerformerConfig config;
  config.features = 512;
  research::performer_attention(test::params_of(c, true), config);
  const auto ref = test::reference_attention(c);
  EXPECT_EQ(c.out.count_non_finite(), 0);
  EXPECT_LT(test::relative_error(c, ref), 0.15);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 4; ++h)
      for (int64_t i = 0; i < 16; ++i) {
        EXPECT_EQ(c.out.get(b, h, i, 0), 0.0);
        EXPECT_TRUE(std::isinf(c.lse.get(b, h, i)) && c.lse.get(b, h, i) < 0);
      }
  // Where rows do see keys, the LSE is an estimate of the exact one.
  EXPECT_LT(test::lse_max_error(c, ref), 0.5);
}

TEST(Performer, HalfPrecisionInputs) {
  for (auto dtype : {PFA_DTYPE_FP16, PFA_DTYPE_BF16}) {
    Problem p = make_problem(1, 2, 2, 128, 128, 64, dtype, false);
    test::set_regime(p, 0.5);
    EXPECT_LT(run_error(p, 512, test::fresh_seed()), 0.1) << dtype_name(dtype);
  }
}

TEST(Performer, OrthogonalBlocksAreOrthogonal) {
  const auto w = research::performer_projection(96, 32, 11, true);
  // Rows 0..31 form one block: pairwise orthogonal.
  for (int a = 0; a < 32; ++a)
    for (int b = a + 1; b < 32; ++b) {
      double dot = 0, na = 0, nb = 0;
      for (int t = 0; t < 32; ++t) {
        dot += double(w[a * 32 + t]) * w[b * 32 + t];
        na += double(w[a * 32 + t]) * w[a * 32 + t];
        nb += double(w[b * 32 + t]) * w[b * 32 + t];
      }
      EXPECT_LT(std::fabs(dot) / std::sqrt(na * nb), 1e-4);
    }
}

TEST(Performer, RejectsBadParams) {
  kernels::AttentionParams p;
  EXPECT_THROW(research::performer_attention(p, {}), std::invalid_argument);
}

}  // namespace
}  // namespace pfa

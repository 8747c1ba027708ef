// Spectral low-pass attention: exact when every mode is kept, converging as modes grow on smooth
// sequences, causal without leaking future tokens; FNet mixing is the 2-D DFT it claims to be and
// is far from attention, as it should be.
#include "research_case.h"

#include <pfa/research/spectral.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <complex>
#include <numbers>

namespace pfa {
namespace {

using research::SpectralConfig;

// Keys and values made of a few low sinusoids along the sequence (plus the random case's noise
// scaled by `noise`): the kind of signal a low-pass filter keeps.
void make_smooth(test::AttentionCase& c, std::mt19937_64& rng, double noise) {
  std::uniform_real_distribution<double> u(-1, 1);
  const Problem& p = c.problem;
  for (test::HostTensor* t : {&c.k, &c.v}) {
    for (int64_t b = 0; b < p.batch; ++b)
      for (int64_t h = 0; h < p.heads_kv; ++h)
        for (int64_t d = 0; d < p.head_dim; ++d) {
          double a[3], phase[3];
          for (int j = 0; j < 3; ++j) {
            a[j] = u(rng);
            phase[j] = std::numbers::pi * u(rng);
          }
          for (int64_t s = 0; s < p.seqlen_k; ++s) {
            double x = noise * t->get(b, s, h, d);
            for (int j = 0; j < 3; ++j) {
              x += a[j] * std::sin(2 * std::numbers::pi * (j + 1) * s / p.seqlen_k + phase[j]);
            }
            const int64_t idx[4] = {b, s, h, d};
            t->set(idx, x);
          }
        }
  }
}

TEST(Spectral, ExactWhenEveryModeIsKept) {
  for (bool causal : {false, true}) {
    Problem p = make_problem(1, 4, 2, 100, 100, 40, PFA_DTYPE_FP32, causal);
    p.want_lse = 1;
    std::mt19937_64 rng(test::fresh_seed());
    auto c = test::make_case(p, PFA_LAYOUT_BSHD, rng);
    SpectralConfig config;
    config.block = 32;
    config.modes = 32;
    research::spectral_attention(test::params_of(c, true), config);
    const auto ref = test::reference_attention(c);
    EXPECT_LT(test::relative_error(c, ref), 1e-5) << "causal " << causal;
    EXPECT_LT(test::lse_max_error(c, ref), 1e-4);
  }
}

TEST(Spectral, ConvergesAsModesGrowOnSmoothSequences) {
  Problem p = make_problem(1, 2, 2, 256, 256, 32, PFA_DTYPE_FP32, false);
  test::set_regime(p, 2.0);
  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(p, PFA_LAYOUT_BSHD, rng);
  make_smooth(c, rng, 0.02);
  const auto ref = test::reference_attention(c);
  double previous = 1e9;
  for (int64_t modes : {2, 4, 8, 32, 128, 256}) {
    SpectralConfig config;
    config.block = 0;  // one block: the whole sequence
    config.modes = modes;
    research::spectral_attention(test::params_of(c, false), config);
    const double error = test::relative_error(c, ref);
    std::printf("modes %3lld  relative error %.3g\n", static_cast<long long>(modes), error);
    EXPECT_LT(error, previous * 1.05) << modes << " modes";
    // K and V are band-limited by now; what is left is the quadrature error of sampling
    // exp(q.k(t)) v(t) at `modes` points, which falls quickly.
    if (modes >= 32) EXPECT_LT(error, 0.02) << modes << " modes";
    if (modes == 256) EXPECT_LT(error, 1e-5);
    previous = error;
  }
}

TEST(Spectral, CausalRowsNeverSeeFutureTokens) {
  Problem p = make_problem(1, 2, 1, 96, 96, 16, PFA_DTYPE_FP32, true);
  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(p, PFA_LAYOUT_BSHD, rng);
  SpectralConfig config;
  config.block = 16;
  config.modes = 4;
  research::spectral_attention(test::params_of(c, false), config);
  std::vector<double> before;
  for (int64_t i = 0; i < 50; ++i)
    for (int64_t d = 0; d < 16; ++d) before.push_back(c.out.get(0, i, 1, d));
  // Change every key and value from position 50 on: rows 0..49 must not move at all.
  for (int64_t s = 50; s < 96; ++s)
    for (int64_t d = 0; d < 16; ++d) {
      const int64_t idx[4] = {0, s, 0, d};
      c.k.set(idx, 3.0);
      c.v.set(idx, -5.0);
    }
  research::spectral_attention(test::params_of(c, false), config);
  size_t n = 0;
  for (int64_t i = 0; i < 50; ++i)
    for (int64_t d = 0; d < 16; ++d) EXPECT_EQ(c.out.get(0, i, 1, d), before[n++]) << i;
}

TEST(Spectral, ErrorModelIsConservativeOnWhiteNoise) {
  for (double regime : {0.3, 2.0, 6.0}) {
    for (int64_t modes : {8, 64}) {
      Problem p = make_problem(1, 2, 2, 300, 300, 32, PFA_DTYPE_BF16, regime > 1);
      test::set_regime(p, regime);
      std::mt19937_64 rng(test::fresh_seed());
      auto c = test::make_case(p, PFA_LAYOUT_BSHD, rng);
      SpectralConfig config;
      config.modes = modes;
      config.block = 128;
      research::spectral_attention(test::params_of(c, false), config);
      EXPECT_LT(test::relative_error(c, test::reference_attention(c)),
                research::spectral_expected_error(config, 300, p.causal != 0))
          << "regime " << regime << " modes " << modes;
    }
  }
}

TEST(Spectral, FnetIsTheRealPartOfA2dDft) {
  Problem p = make_problem(1, 2, 1, 12, 12, 6, PFA_DTYPE_FP32, false);
  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(p, PFA_LAYOUT_BSHD, rng);
  research::fnet_mixing(test::params_of(c, false));
  const int64_t L = 12, D = 6;
  for (int64_t t = 0; t < L; ++t)
    for (int64_t e = 0; e < D; ++e) {
      std::complex<double> sum = 0;
      for (int64_t s = 0; s < L; ++s)
        for (int64_t d = 0; d < D; ++d) {
          const double angle = -2 * std::numbers::pi * (double(t * s) / L + double(e * d) / D);
          sum += c.v.get(0, s, 0, d) * std::polar(1.0, angle);
        }
      const double expected = sum.real() / (L * std::sqrt(double(D)));
      EXPECT_NEAR(c.out.get(0, t, 0, e), expected, 1e-5);
      EXPECT_EQ(c.out.get(0, t, 1, e), c.out.get(0, t, 0, e)) << "GQA group shares the output";
    }
}

TEST(Spectral, FnetReplacesAttentionAndTheGapIsLarge) {
  Problem p = make_problem(1, 2, 2, 128, 128, 32, PFA_DTYPE_FP32, false);
  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(p, PFA_LAYOUT_BSHD, rng);
  research::fnet_mixing(test::params_of(c, false));
  const double error = test::relative_error(c, test::reference_attention(c));
  EXPECT_GT(error, 0.5) << "FNet is not an approximation of attention";
  EXPECT_LT(error, research::fnet_expected_error());
}

TEST(Spectral, FnetRefusesWhatItCannotMean) {
  Problem p = make_problem(1, 1, 1, 8, 8, 8, PFA_DTYPE_FP32, true);
  std::mt19937_64 rng(1);
  auto c = test::make_case(p, PFA_LAYOUT_BSHD, rng);
  EXPECT_THROW(research::fnet_mixing(test::params_of(c, false)), std::invalid_argument);
}

}  // namespace
}  // namespace pfa

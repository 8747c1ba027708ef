// The state-vector simulator against textbook results, and QSANN attention against a direct
// evaluation of its own formula; deterministic under a seed; shots converge to expectations.
#include "research_case.h"

#include <pfa/research/qsann.h>
#include <pfa/research/state_vector.h>

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

namespace pfa {
namespace {

using research::QsannConfig;
using research::StateVector;

TEST(StateVector, SingleQubitRotations) {
  for (double theta : {0.0, 0.3, 1.2, std::numbers::pi}) {
    StateVector s(3);
    s.ry(1, static_cast<float>(theta));
    EXPECT_NEAR(s.expectation_z(1), std::cos(theta), 1e-6);
    EXPECT_NEAR(s.expectation_z(0), 1.0, 1e-6);
    s.rz(1, 0.7f);  // a phase: no change to Z populations
    EXPECT_NEAR(s.expectation_z(1), std::cos(theta), 1e-6);
    EXPECT_NEAR(s.norm(), 1.0, 1e-6);
  }
}

TEST(StateVector, CnotEntanglesAndFlips) {
  StateVector bell(2);
  bell.ry(0, static_cast<float>(std::numbers::pi / 2));
  bell.cnot(0, 1);
  EXPECT_NEAR(bell.expectation_z(1), 0.0, 1e-6);
  EXPECT_NEAR(std::norm(bell.amplitudes()[0]), 0.5, 1e-6);  // |00>
  EXPECT_NEAR(std::norm(bell.amplitudes()[3]), 0.5, 1e-6);  // |11>
  StateVector flip(4);
  flip.ry(2, static_cast<float>(std::numbers::pi));
  flip.cnot(2, 3);
  EXPECT_NEAR(flip.expectation_z(3), -1.0, 1e-6);
  EXPECT_THROW(StateVector(0), std::invalid_argument);
  EXPECT_THROW(StateVector(StateVector::kMaxQubits + 1), std::invalid_argument);
}

TEST(Qsann, MatchesItsOwnFormula) {
  Problem p = make_problem(1, 4, 2, 20, 24, 10, PFA_DTYPE_FP32, true);
  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(p, PFA_LAYOUT_BSHD, rng);
  QsannConfig config;
  config.qubits = 4;
  research::qsann_attention(test::params_of(c, false), config);
  const float root = std::sqrt(p.softmax_scale);
  auto z_of = [&](test::HostTensor& t, int64_t s, int64_t h, int role) {
    std::vector<float> x(10);
    for (int64_t d = 0; d < 10; ++d) x[d] = static_cast<float>(t.get(0, s, h, d)) * root;
    return research::qsann_expectation(x.data(), 10, config, h, role);
  };
  for (int64_t h = 0; h < 4; ++h) {
    const int64_t hk = h / 2;
    for (int64_t i = 0; i < 20; ++i) {
      const double zq = z_of(c.q, i, h, 0);
      const int64_t visible = i + 24 - 20 + 1;
      std::vector<double> o(10, 0.0);
      double sum = 0;
      for (int64_t j = 0; j < visible; ++j) {
        const double diff = zq - z_of(c.k, j, hk, 1);
        const double w = std::exp(-diff * diff);
        sum += w;
        for (int64_t d = 0; d < 10; ++d) o[d] += w * c.v.get(0, j, hk, d);
      }
      for (int64_t d = 0; d < 10; ++d) EXPECT_NEAR(c.out.get(0, i, h, d), o[d] / sum, 1e-4);
    }
  }
}

TEST(Qsann, DeterministicUnderASeedAndShotsConverge) {
  Problem p = make_problem(1, 2, 2, 32, 32, 16, PFA_DTYPE_FP32, false);
  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(p, PFA_LAYOUT_BSHD, rng);
  QsannConfig config;
  config.qubits = 5;
  auto params = test::params_of(c, false);
  research::qsann_attention(params, config);
  std::vector<double> exact;
  for (int64_t i = 0; i < 32; ++i)
    for (int64_t d = 0; d < 16; ++d) exact.push_back(c.out.get(0, i, 1, d));
  research::qsann_attention(params, config);
  size_t n = 0;
  for (int64_t i = 0; i < 32; ++i)
    for (int64_t d = 0; d < 16; ++d) ASSERT_EQ(c.out.get(0, i, 1, d), exact[n++]);
  // Finite shots: noisy expectations, closer to the exact ones as shots grow.
  double previous = 1e9;
  for (int64_t shots : {16, 1024, 65536}) {
    config.shots = shots;
    research::qsann_attention(params, config);
    double num = 0, den = 0;
    n = 0;
    for (int64_t i = 0; i < 32; ++i)
      for (int64_t d = 0; d < 16; ++d) {
        const double e = c.out.get(0, i, 1, d) - exact[n];
        num += e * e;
        den += exact[n] * exact[n];
        ++n;
      }
    const double gap = std::sqrt(num / den);
    EXPECT_LT(gap, previous) << shots << " shots";
    previous = gap;
  }
  EXPECT_LT(previous, 0.02);
}

TEST(Qsann, ReportsItsDistanceFromSoftmaxAttention) {
  Problem p = make_problem(1, 2, 2, 64, 64, 32, PFA_DTYPE_BF16, false);
  test::set_regime(p, 4.0);
  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(p, PFA_LAYOUT_BSHD, rng);
  research::qsann_attention(test::params_of(c, false), {});
  const double error = test::relative_error(c, test::reference_attention(c));
  EXPECT_GT(error, 0.05) << "QSANN weights are not softmax weights";
  EXPECT_LT(error, research::qsann_expected_error());
}

TEST(Qsann, RefusesLseAndBadConfigs) {
  Problem p = make_problem(1, 1, 1, 4, 4, 8, PFA_DTYPE_FP32, false);
  std::mt19937_64 rng(1);
  auto c = test::make_case(p, PFA_LAYOUT_BSHD, rng);
  EXPECT_THROW(research::qsann_attention(test::params_of(c, true), {}), std::invalid_argument);
  QsannConfig too_big;
  too_big.qubits = 40;
  EXPECT_THROW(research::qsann_attention(test::params_of(c, false), too_big),
               std::invalid_argument);
}

}  // namespace
}  // namespace pfa

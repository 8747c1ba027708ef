// Attention through the simulated device: exact when ideal, error ordered by bits and optical
// power, deterministic per seed.
#include "photonic_test_util.h"

#include <pfa/photonic/tensor_core.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

namespace pfa::photonic {
namespace {

using test_util::device;
using test_util::ideal_config;
using test_util::random_case;
using test_util::run_error;

TEST(PhotonicAttention, IdealDeviceMatchesExactAttentionToFloatPrecision) {
  const SimulatedDevice ideal = device(ideal_config());
  const uint64_t seed = pfa::test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (bool causal : {false, true}) {
    auto c = random_case(seed, 77, 72, causal, PFA_DTYPE_FP32, 4, 2);
    const double error = run_error(ideal, c);
    EXPECT_LT(error, 1e-5) << "causal " << causal;
    EXPECT_LT(pfa::test::lse_max_error(c, pfa::test::reference_attention(c)), 1e-4);
    EXPECT_EQ(c.out.count_non_finite(), 0);
  }
  // Reduced-precision tensors: the output rounding is the only error left.
  for (pfa_dtype dtype : {PFA_DTYPE_FP16, PFA_DTYPE_BF16}) {
    auto c = random_case(seed, 40, 64, true, dtype);
    EXPECT_LT(run_error(ideal, c), pfa::test::tolerance(dtype));
  }
}

TEST(PhotonicAttention, CausalRowsThatSeeNoKeyAreZeroWithMinusInfinityLse) {
  std::mt19937_64 rng(pfa::test::fresh_seed());
  Problem problem = make_problem(1, 2, 2, 20, 8, 32, PFA_DTYPE_FP32, true);  // 12 rows see nothing
  problem.want_lse = 1;
  auto c = pfa::test::make_case(problem, PFA_LAYOUT_BSHD, rng);
  SimConfig config;
  const SimulatedDevice d = device(config);
  photonic_attention(d, test_util::params_of(c), 3);
  for (int64_t h = 0; h < 2; ++h) {
    for (int64_t i = 0; i < 12; ++i) {
      EXPECT_TRUE(std::isinf(c.lse.get(0, h, i)) && c.lse.get(0, h, i) < 0);
      for (int64_t x = 0; x < 32; ++x) EXPECT_EQ(c.out.get(0, i, h, x), 0.0);
    }
  }
  EXPECT_EQ(c.out.count_non_finite(), 0);
}

TEST(PhotonicAttention, ErrorGrowsAsBitsDrop) {
  const uint64_t seed = pfa::test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  auto c = random_case(seed, 128, 64);
  double previous = 0;
  for (int bits : {12, 10, 8, 6, 4}) {
    SimConfig config;
    config.dac_bits = config.adc_bits = bits;
    SimulatedDevice d = device(config);
    calibrate(d, CalibrationOptions{.measure_error = false});
    const double error = run_error(d, c);
    EXPECT_GT(error, previous) << bits << " bits";
    previous = error;
  }
  EXPECT_LT(previous, 0.5);  // 4 bits: tens of percent, not garbage
}

TEST(PhotonicAttention, ErrorGrowsAsOpticalPowerFalls) {
  const uint64_t seed = pfa::test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  auto c = random_case(seed, 128, 64);
  double previous = 0;
  for (double offset_db : {0.0, -20.0, -30.0, -40.0}) {
    SimConfig config;
    config.optical_power_offset_db = offset_db;
    SimulatedDevice d = device(config);
    calibrate(d, CalibrationOptions{.measure_error = false});
    const double error = run_error(d, c);
    EXPECT_GT(error, previous) << offset_db << " dB";
    previous = error;
  }
}

TEST(PhotonicAttention, SameSeedSameOutputOtherSeedOtherOutput) {
  const uint64_t seed = pfa::test::fresh_seed();
  auto a = random_case(seed, 64, 64);
  auto b = random_case(seed, 64, 64);
  SimConfig config;
  config.noise_seed = 11;
  const SimulatedDevice d1 = device(config), d2 = device(config);
  photonic_attention(d1, test_util::params_of(a), 5);
  photonic_attention(d2, test_util::params_of(b), 5);
  EXPECT_EQ(std::memcmp(a.out.data(), b.out.data(), a.out.storage_bytes()), 0);
  config.noise_seed = 12;
  const SimulatedDevice d3 = device(config);
  photonic_attention(d3, test_util::params_of(b), 5);
  EXPECT_NE(std::memcmp(a.out.data(), b.out.data(), a.out.storage_bytes()), 0);
}

TEST(PhotonicAttention, SampledErrorAgreesWithTheFullError) {
  auto c = random_case(pfa::test::fresh_seed(), 200, 64);
  SimConfig config;
  config.dac_bits = config.adc_bits = 6;
  const SimulatedDevice d = device(config);
  const auto p = test_util::params_of(c);
  photonic_attention(d, p, 1);
  const double full = pfa::test::relative_error(c, pfa::test::reference_attention(c));
  const SampledError sampled = sampled_error(p, 32);
  EXPECT_EQ(sampled.rows, 32);
  EXPECT_NEAR(sampled.rel_error, full, 0.35 * full);
}

// A matrix product on the ideal crossbar equals the exact product; on the noisy, calibrated one its
// error grows as bits drop and stays within 10 quantisation steps plus the detector-noise floor.
TEST(TensorCore, ProductMatchesExactWhenIdealAndDegradesWithBits) {
  const int64_t m = 37, n = 29, k = 50;
  std::mt19937_64 rng(pfa::test::fresh_seed());
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> a(m * k), b(n * k);
  for (float& x : a) x = u(rng);
  for (float& x : b) x = u(rng);
  std::vector<double> exact(m * n, 0.0);
  double norm = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t x = 0; x < k; ++x) exact[i * n + j] += static_cast<double>(a[i * k + x]) * b[j * k + x];
      norm += exact[i * n + j] * exact[i * n + j];
    }
  auto product_error = [&](SimulatedDevice& d) {
    const SignalChain chain(d, 4);
    const EncodedRows ea = encode_rows(chain, a.data(), m, k, k, 1, Side::a, false);
    const EncodedRows eb = encode_rows(chain, b.data(), n, k, k, 1, Side::b, false);
    const AdcRange adc = pilot_adc_range(chain, ea, eb, d.config().adc_range_sigmas);
    ProductStats stats;
    const std::vector<float> c = photonic_matmul(chain, ea, eb, adc, 1, &stats);
    EXPECT_EQ(stats.detections, m * n * chain.chunks(k));
    double diff = 0;
    for (int64_t i = 0; i < m * n; ++i) diff += (c[i] - exact[i]) * (c[i] - exact[i]);
    return std::sqrt(diff / norm);
  };
  SimulatedDevice ideal = device(ideal_config());
  EXPECT_LT(product_error(ideal), 1e-5);
  double previous = 0;
  for (int bits : {12, 8, 6, 4}) {
    SimConfig config;
    config.dac_bits = config.adc_bits = bits;
    SimulatedDevice d = device(config);
    calibrate(d, CalibrationOptions{.measure_error = false});
    const double error = product_error(d);
    EXPECT_GT(error, previous) << bits;
    EXPECT_LT(error, 10.0 / std::ldexp(1.0, bits - 1) + 0.03) << bits;  // + the RIN floor
    previous = error;
  }
}

TEST(Profiles, VendorLikeProfileRunsAndFilesLoadByPath) {
  SimConfig config;
  SimulatedDevice d = device(config, "envise_like");
  calibrate(d, CalibrationOptions{.measure_error = false});
  auto c = random_case(pfa::test::fresh_seed(), 80, 64);
  EXPECT_LT(run_error(d, c), 0.06);
  const DeviceParams from_file = load_profile(std::string(PFA_PHOTONIC_PROFILES) + "/envise_like.json");
  EXPECT_EQ(from_file.name, "envise_like");
  EXPECT_EQ(from_file.core_height, d.params().core_height);
}

}  // namespace
}  // namespace pfa::photonic

// The receiver and converter models against their closed forms (REFERENCES.md, Photonic engine).
#include "photonic_test_util.h"

#include <pfa/photonic/counter_rng.h>
#include <pfa/photonic/receiver_noise.h>
#include <pfa/photonic/ring_crosstalk.h>
#include <pfa/photonic/signal_chain.h>

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

namespace pfa::photonic {
namespace {

// The worked receiver example: 1 A/W, 2.5 GHz, 300 K, 1 kOhm, 0.1 nA dark, no RIN.
ReceiverInputs example(double dbm) {
  ReceiverInputs in;
  in.optical_power_w = dbm_to_w(dbm);
  in.responsivity_a_per_w = 1.0;
  in.bandwidth_hz = 2.5e9;
  in.temperature_k = 300;
  in.load_resistance_ohm = 1000;
  in.dark_current_a = 0.1e-9;
  in.rin_per_hz = 0;
  return in;
}

TEST(ReceiverNoise, ReproducesTheDerivedFigures) {
  EXPECT_NEAR(receiver_noise(example(-25)).snr_db(), 23.6, 0.1);
  EXPECT_NEAR(receiver_noise(example(-25)).enob(), 3.6, 0.05);
  EXPECT_NEAR(receiver_noise(example(-20)).enob(), 5.2, 0.05);
  EXPECT_NEAR(receiver_noise(example(-10)).enob(), 7.9, 0.05);
}

TEST(ReceiverNoise, EachTermFollowsItsFormula) {
  ReceiverInputs in = example(-15);
  in.rin_per_hz = from_db(-150);
  const ReceiverNoise n = receiver_noise(in);
  const double i = dbm_to_w(-15);
  EXPECT_DOUBLE_EQ(n.signal_current_a, i);
  EXPECT_NEAR(n.shot_a2, 2 * 1.602176634e-19 * (i + 0.1e-9) * 2.5e9, 1e-30);
  EXPECT_NEAR(n.thermal_a2, 4 * 1.380649e-23 * 300 * 2.5e9 / 1000, 1e-30);
  EXPECT_NEAR(n.rin_a2, 1e-15 * i * i * 2.5e9, 1e-30);
  // Thermal-limited, SNR grows 2 dB per dB of power: one more bit (6 dB) costs 2x power.
  const double low = receiver_noise(example(-40)).snr_db();
  const double low3 = receiver_noise(example(-37)).snr_db();
  EXPECT_NEAR(low3 - low, 6.0, 0.2);
}

TEST(RingCrosstalk, LorentzianAtTheGridSpacings) {
  EXPECT_NEAR(to_db(adjacent_crosstalk(0.4, 0.228)), -11.0, 0.5);
  EXPECT_NEAR(to_db(adjacent_crosstalk(0.8, 0.228)), -17.0, 0.5);
  EXPECT_NEAR(to_db(adjacent_crosstalk(1.6, 0.228)), -23.0, 0.5);
}

TEST(Adc, QuantisationSnrMatchesSixDbPerBit) {
  for (int bits : {4, 6, 8, 10}) {
    const AdcRange adc = make_adc_range(1.0, bits);
    double signal = 0, error = 0;
    int64_t clipped = 0;
    const int n = 100000;
    for (int t = 0; t < n; ++t) {
      // A full-scale sine (just inside the top code), incommensurate with the step.
      const double y = (1.0 - adc.step) * std::sin(2 * std::numbers::pi * 0.1234567 * t);
      const double q = quantize(adc, static_cast<float>(y), clipped);
      signal += y * y;
      error += (q - y) * (q - y);
    }
    EXPECT_EQ(clipped, 0);
    // 6.02 b + 1.76 dB for a sine spanning the full range, less the amplitude's shortfall.
    const double amplitude_db = 20 * std::log10(1.0 - adc.step);
    EXPECT_NEAR(10 * std::log10(signal / error), snr_db_of_bits(bits) + amplitude_db, 0.5)
        << bits << " bits";
  }
}

TEST(Adc, ClipsBeyondFullScale) {
  const AdcRange adc = make_adc_range(0.5, 8);
  int64_t clipped = 0;
  EXPECT_NEAR(quantize(adc, 0.9f, clipped), 0.5f, adc.step * 1.01);
  EXPECT_EQ(clipped, 1);
}

// The simulated detector's noise equals the closed form for the device's received power, and the
// end-to-end effective bits combine quantisation and noise as 1/SNR = 1/SNR_q + 1/SNR_n.
TEST(SignalChain, DetectorNoiseAndEffectiveBitsMatchClosedForm) {
  SimConfig config;
  config.variation = false;
  config.crosstalk = false;
  config.adc_range_sigmas = 0;
  for (double offset_db : {-10.0, -20.0}) {
    config.optical_power_offset_db = offset_db;
    config.adc_bits = config.dac_bits = 6;
    const SimulatedDevice device = test_util::device(config);
    const double sigma = device.noise_sigma();
    const ReceiverNoise closed = device.receiver();
    EXPECT_NEAR(sigma, closed.relative_sigma(), 1e-12);

    // Measure: a constant full-scale product (all channels +1), many noise draws, 24-bit ADC.
    SimConfig fine = config;
    fine.adc_bits = 24;
    const SimulatedDevice fine_device = test_util::device(fine);
    const SignalChain chain(fine_device, 9);
    const int L = chain.wavelengths();
    std::vector<float> ones(L, 1.0f), a(L), b(L);
    float scale;
    chain.encode(ones.data(), L, 1, 0, Side::a, false, a.data(), &scale);
    chain.encode(ones.data(), L, 1, 0, Side::b, false, b.data(), &scale);
    const AdcRange adc = make_adc_range(chain.physical_full_scale(), 24);
    const double clean = chain.analog(a.data(), b.data(), 0, 0);
    const int n = 200000;
    double sum = 0, sum2 = 0;
    int64_t clipped = 0;
    const uint64_t key = chain.noise_key(1);
    const double full_scale_out = chain.corrections().output_gain[0];  // digital units of y = 1
    for (int t = 0; t < n; ++t) {
      const double y =
          chain.detect(a.data(), b.data(), 0, 0, key, static_cast<uint32_t>(t), 0, 1, adc,
                       clipped) /
          full_scale_out;
      sum += y;
      sum2 += y * y;
    }
    const double mean = sum / n, var = sum2 / n - mean * mean;
    EXPECT_NEAR(mean, clean, 5e-3 * std::abs(clean) + 3 * fine_device.noise_sigma() / std::sqrt(n));
    EXPECT_NEAR(std::sqrt(var), fine_device.noise_sigma(), 0.02 * fine_device.noise_sigma())
        << "offset " << offset_db << " dB";

    // Effective bits of detection through the 6-bit ADC: a half-scale sine, so noise peaks
    // do not clip.
    const AdcRange adc6 = make_adc_range(1.0, 6);
    const double amplitude = 0.5;
    double signal = 0, error = 0;
    for (int t = 0; t < n; ++t) {
      const double y = amplitude * std::sin(2 * std::numbers::pi * 0.0123457 * t);
      const double noisy = y + sigma * gaussian(key, 1000000 + t);
      const double q = quantize(adc6, static_cast<float>(noisy), clipped);
      signal += y * y;
      error += (q - y) * (q - y);
    }
    // Closed form: sine power A^2/2 over quantisation (step^2/12) plus detector noise (sigma^2).
    const double expected_db = 10 * std::log10(amplitude * amplitude / 2 /
                                               (adc6.step * adc6.step / 12 + sigma * sigma));
    EXPECT_NEAR(10 * std::log10(signal / error), expected_db, 0.3) << "offset " << offset_db;
    const double enob = bits_of_snr_db(10 * std::log10(signal / error));
    EXPECT_LT(enob, 6.0);
    EXPECT_LE(enob, closed.enob() + 0.3);
  }
}

TEST(CounterRng, UnitVarianceAndDeterministic) {
  const uint64_t key = stream_key(42, 7);
  double sum = 0, sum2 = 0;
  const int n = 400000;
  for (int t = 0; t < n; ++t) {
    const double g = gaussian(key, t);
    sum += g;
    sum2 += g * g;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sum2 / n, 1.0, 0.01);
  EXPECT_EQ(gaussian(key, 12345), gaussian(stream_key(42, 7), 12345));
  EXPECT_NE(gaussian(key, 12345), gaussian(stream_key(43, 7), 12345));
}

}  // namespace
}  // namespace pfa::photonic

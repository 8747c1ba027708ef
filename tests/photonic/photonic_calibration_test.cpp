// Calibration: it finds what the fabrication variation did, removes error measured on the same
// inputs, round-trips through JSON, and goes stale when the temperature drifts without control.
#include "photonic_test_util.h"

#include <pfa/photonic/calibration.h>

#include <gtest/gtest.h>

#include <cstring>

namespace pfa::photonic {
namespace {

using test_util::device;

TEST(Calibration, ReducesErrorAndReportsTheDevice) {
  SimConfig config;
  config.device_seed = 21;
  SimulatedDevice d = device(config);
  auto c = test_util::random_case(pfa::test::fresh_seed(), 96, 64);
  const double before = test_util::run_error(d, c);
  const CalibrationData data = calibrate(d);
  const double after = test_util::run_error(d, c);
  const CalibrationReport& r = data.report;
  SCOPED_TRACE(summary(r));
  EXPECT_LT(after, 0.7 * before);
  EXPECT_LT(r.rel_error_after, r.rel_error_before);
  EXPECT_LT(r.wavelength_error_pm_after, 0.2 * r.wavelength_error_pm_before);
  EXPECT_LT(r.wavelength_error_pm_after, 3.0);
  EXPECT_NEAR(r.crosstalk_db, r.crosstalk_db_design, 1.5);
  EXPECT_GT(r.power_uniformity_pct, 1.0);
  EXPECT_LT(r.residual_uniformity_pct, 0.5 * r.power_uniformity_pct);
  EXPECT_TRUE(d.calibrated());
  EXPECT_FALSE(d.calibration_stale());
}

TEST(Calibration, JsonRoundTripReproducesTheCalibratedDevice) {
  SimConfig config;
  config.device_seed = 5;
  SimulatedDevice a = device(config);
  const CalibrationData data = calibrate(a, CalibrationOptions{.measure_error = false});
  const std::string json = calibration_to_json(data);
  const CalibrationData back = calibration_from_json(json);
  EXPECT_EQ(calibration_to_json(back), json);

  SimulatedDevice b = device(config);
  apply_calibration(b, back);
  auto x = test_util::random_case(pfa::test::fresh_seed(), 48, 64);
  auto y = x;
  photonic_attention(a, test_util::params_of(x), 2);
  photonic_attention(b, test_util::params_of(y), 2);
  EXPECT_EQ(std::memcmp(x.out.data(), y.out.data(), x.out.storage_bytes()), 0);

  SimConfig other = config;
  other.device_seed = 6;
  SimulatedDevice c = device(other);
  EXPECT_THROW(apply_calibration(c, back), std::runtime_error);
}

TEST(Calibration, DriftWithoutControlMakesItStaleAndCostsAccuracy) {
  auto c = test_util::random_case(pfa::test::fresh_seed(), 96, 64);
  SimConfig config;
  config.drift = true;
  config.control_loop = false;
  SimulatedDevice d = device(config);
  calibrate(d, CalibrationOptions{.measure_error = false});
  const double fresh = test_util::run_error(d, c);
  d.advance_time(60.0);  // 0.02 K/s x 60 s = 1.2 K: about 53 pm of ring shift
  EXPECT_TRUE(d.calibration_stale());
  EXPECT_GT(d.drift_since_calibration_pm(), 40.0);
  const double drifted = test_util::run_error(d, c);
  EXPECT_GT(drifted, 1.5 * fresh);
  calibrate(d, CalibrationOptions{.measure_error = false});
  EXPECT_FALSE(d.calibration_stale());
  EXPECT_LT(test_util::run_error(d, c), 0.8 * drifted);

  // With the control loop on, the same minute leaves it fresh.
  config.control_loop = true;
  SimulatedDevice held = device(config);
  calibrate(held, CalibrationOptions{.measure_error = false});
  held.advance_time(60.0);
  EXPECT_FALSE(held.calibration_stale());
}

}  // namespace
}  // namespace pfa::photonic

// The environment settings the plugin and the calibration tools share.
#include <pfa/photonic/settings.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>

namespace pfa::photonic {
namespace {

TEST(Settings, DefaultsAndOverrides) {
  for (const char* name : {"PFA_PHOTONIC_PROFILE", "PFA_PHOTONIC_BITS", "PFA_PHOTONIC_DAC_BITS",
                           "PFA_PHOTONIC_ADC_BITS", "PFA_PHOTONIC_SEED", "PFA_PHOTONIC_DEVICE_SEED",
                           "PFA_PHOTONIC_DRIFT", "PFA_PHOTONIC_TIME_SCALE",
                           "PFA_PHOTONIC_CALIBRATION", "PFA_PHOTONIC_SAMPLE_ROWS",
                           "PFA_PHOTONIC_LOG"}) {
    ::unsetenv(name);
  }
  Settings s = settings_from_env();
  EXPECT_EQ(s.profile, "generic");
  EXPECT_EQ(s.config.dac_bits, 8);
  EXPECT_EQ(s.config.adc_bits, 8);
  EXPECT_FALSE(s.config.drift);
  EXPECT_EQ(s.calibration, "auto");
  EXPECT_EQ(s.sample_rows, 16);

  ::setenv("PFA_PHOTONIC_PROFILE", "envise_like", 1);
  ::setenv("PFA_PHOTONIC_BITS", "6", 1);
  ::setenv("PFA_PHOTONIC_ADC_BITS", "10", 1);
  ::setenv("PFA_PHOTONIC_DEVICE_SEED", "42", 1);
  ::setenv("PFA_PHOTONIC_DRIFT", "free", 1);
  s = settings_from_env();
  EXPECT_EQ(s.profile, "envise_like");
  EXPECT_EQ(s.config.dac_bits, 6);
  EXPECT_EQ(s.config.adc_bits, 10);
  EXPECT_EQ(s.config.device_seed, 42u);
  EXPECT_TRUE(s.config.drift);
  EXPECT_FALSE(s.config.control_loop);

  ::setenv("PFA_PHOTONIC_BITS", "eight", 1);
  EXPECT_THROW(settings_from_env(), std::runtime_error);
  ::setenv("PFA_PHOTONIC_BITS", "30", 1);
  EXPECT_THROW(settings_from_env(), std::runtime_error);
  ::unsetenv("PFA_PHOTONIC_BITS");
  ::setenv("PFA_PHOTONIC_DRIFT", "sometimes", 1);
  EXPECT_THROW(settings_from_env(), std::runtime_error);
  for (const char* name : {"PFA_PHOTONIC_PROFILE", "PFA_PHOTONIC_ADC_BITS",
                           "PFA_PHOTONIC_DEVICE_SEED", "PFA_PHOTONIC_DRIFT"}) {
    ::unsetenv(name);
  }
}

}  // namespace
}  // namespace pfa::photonic

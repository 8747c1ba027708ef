// The photonic_sim plugin through the engine: flagged simulated and approximate, modelled cost
// filled in, the error it reports measured on the call's own data, configuration from the
// environment.
#include "attention_case.h"

#include <pfa/engine.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

namespace pfa {
namespace {

Engine photonic_engine() {
  EngineOptions options;
  const char* dir = std::getenv("PFA_BUILD_LIB_DIR");
  options.plugins.paths = {std::string(dir ? dir : ".") + "/pfa_plugin_photonic_sim.so"};
  options.plugins.default_paths = false;
  return Engine(options);
}

Report run_once(Engine& engine, test::AttentionCase& c) {
  AttentionOptions options = c.options();
  options.backend = "photonic_sim";
  options.what_if = true;
  options.max_rel_error = 1.0;
  return engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), options);
}

TEST(PhotonicPlugin, ReportsModelledCostAndMeasuredError) {
  Engine engine = photonic_engine();
  ASSERT_TRUE(engine.load_errors().empty()) << engine.load_errors()[0].message;
  const uint64_t seed = test::fresh_seed();
  std::mt19937_64 rng(seed);
  Problem problem = make_problem(1, 2, 2, 64, 64, 64, PFA_DTYPE_FP32, false);
  auto c = test::make_case(problem, PFA_LAYOUT_BSHD, rng);
  const Report r = run_once(engine, c);
  EXPECT_EQ(r.backend, "photonic_sim");
  EXPECT_TRUE(r.simulated);
  EXPECT_TRUE(r.approximate);
  EXPECT_FALSE(r.energy_measured);
  EXPECT_GT(r.energy_j, 0);
  EXPECT_GT(r.modelled_latency_s, 0);
  EXPECT_EQ(std::string(r.detail.data()).rfind("generic dac8 adc8 cal", 0), 0u) << r.detail.data();
  // The reported error is the error on this call's data (16 of 128 rows sampled).
  const double actual = test::relative_error(c, test::reference_attention(c));
  EXPECT_GT(r.error_estimate, 0.4 * actual) << "seed " << seed;
  EXPECT_LT(r.error_estimate, 2.5 * actual) << "seed " << seed;
}

TEST(PhotonicPlugin, ResolutionComesFromTheEnvironment) {
  ::setenv("PFA_PHOTONIC_BITS", "4", 1);
  Engine engine = photonic_engine();
  ::unsetenv("PFA_PHOTONIC_BITS");
  ASSERT_TRUE(engine.load_errors().empty()) << engine.load_errors()[0].message;
  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(make_problem(1, 1, 1, 64, 64, 64, PFA_DTYPE_FP32, false),
                           PFA_LAYOUT_BSHD, rng);
  const Report r = run_once(engine, c);
  EXPECT_EQ(std::string(r.detail.data()).rfind("generic dac4 adc4", 0), 0u) << r.detail.data();
  EXPECT_GT(r.error_estimate, 0.08);  // 4 bits: tens of percent
}

TEST(PhotonicPlugin, ABadSettingFailsLoudly) {
  ::setenv("PFA_PHOTONIC_PROFILE", "no_such_chip", 1);
  Engine engine = photonic_engine();
  ::unsetenv("PFA_PHOTONIC_PROFILE");
  ASSERT_FALSE(engine.load_errors().empty());
  EXPECT_NE(engine.load_errors()[0].message.find("no_such_chip"), std::string::npos)
      << engine.load_errors()[0].message;
}

// Free-running drift (no temperature loop), time sped up: the calibration goes stale, the backend
// says so, and the error it reports (and its estimate for the router) rises.
TEST(PhotonicPlugin, StaleCalibrationShowsInTheReportAndTheEstimate) {
  ::setenv("PFA_PHOTONIC_DRIFT", "free", 1);
  ::setenv("PFA_PHOTONIC_TIME_SCALE", "500", 1);
  Engine engine = photonic_engine();
  ::unsetenv("PFA_PHOTONIC_DRIFT");
  ::unsetenv("PFA_PHOTONIC_TIME_SCALE");
  ASSERT_TRUE(engine.load_errors().empty()) << engine.load_errors()[0].message;
  const Plugin& plugin = *engine.plugins()[0];
  std::mt19937_64 rng(test::fresh_seed());
  Problem problem = make_problem(1, 2, 2, 64, 64, 64, PFA_DTYPE_FP32, false);
  auto c = test::make_case(problem, PFA_LAYOUT_BSHD, rng);
  const double prior = plugin.estimate(problem).rel_error;
  const Report fresh = run_once(engine, c);
  EXPECT_EQ(std::string(fresh.detail.data()).find("stale"), std::string::npos) << fresh.detail.data();
  // Stale after 10 pm = 0.15 K = 7 s simulated = 14 ms of wall time; 80 ms later the rings have
  // moved about 0.8 K x 69 pm/K = 55 pm.
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  const Report drifted = run_once(engine, c);
  EXPECT_NE(std::string(drifted.detail.data()).find("stale"), std::string::npos)
      << drifted.detail.data();
  EXPECT_GT(drifted.error_estimate, 1.5 * fresh.error_estimate);
  EXPECT_GT(plugin.estimate(problem).rel_error, prior);
}

}  // namespace
}  // namespace pfa

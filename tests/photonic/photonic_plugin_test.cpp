// The photonic_sim plugin through the engine: flagged simulated and approximate, modelled cost
// filled in, the error it reports measured on the call's own data, configuration from the
// environment.
#include "attention_case.h"

#include <pfa/engine.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

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

}  // namespace
}  // namespace pfa

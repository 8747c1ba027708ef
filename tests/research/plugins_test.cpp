// The three research plugins through the engine: their per-call error report matches the error
// measured here, they decline what they can't mean with a reason, read their settings from the
// environment, and their priors respond to those settings.
#include "research_case.h"

#include <pfa/engine.h>
#include <pfa/error.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace pfa {
namespace {

std::string lib_dir() {
  const char* env = std::getenv("PFA_BUILD_LIB_DIR");
  return env && *env ? env : PFA_BUILD_LIB_DIR;
}

// Sets an environment variable for one test and removes it afterwards, so that cases run in one
// process do not see each other's settings.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

EngineOptions only(const std::string& name) {
  EngineOptions options;
  options.plugins.paths = {lib_dir() + "/pfa_plugin_" + name + ".so"};
  options.plugins.default_paths = false;
  return options;
}

const Plugin& the_plugin(Engine& engine) {
  if (!engine.load_errors().empty()) ADD_FAILURE() << engine.load_errors()[0].message;
  return *engine.plugins().at(0);
}

class ResearchPlugin : public ::testing::TestWithParam<std::string> {};

TEST_P(ResearchPlugin, ReportsTheErrorItMeasured) {
  Engine engine(only(GetParam()));
  const Plugin& plugin = the_plugin(engine);
  EXPECT_TRUE(plugin.approximate());
  Problem p = make_problem(1, 4, 2, 300, 300, 64, PFA_DTYPE_FP32, true);
  test::set_regime(p, 1.0);
  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(p, PFA_LAYOUT_BSHD, rng);
  auto options = c.options();
  options.backend = plugin.name();
  const Report report = engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), options);
  const double error = test::relative_error(c, test::reference_attention(c));
  EXPECT_TRUE(report.approximate);
  // Sampled rows (32 of 1200) estimate the full error within a loose factor.
  EXPECT_GT(report.error_estimate, 0.4 * error - 1e-3) << report.detail.data();
  EXPECT_LT(report.error_estimate, 2.5 * error + 1e-3) << report.detail.data();
  EXPECT_LT(error, plugin.estimate(p).rel_error);
}

TEST_P(ResearchPlugin, DeclinesOtherDevicesWithAReason) {
  Engine engine(only(GetParam()));
  Problem p = make_problem(1, 1, 1, 8, 8, 64, PFA_DTYPE_FP32, false);
  p.device_type = kDLCUDA;
  std::string reason;
  EXPECT_FALSE(the_plugin(engine).supports(p, &reason));
  EXPECT_NE(reason.find("CPU"), std::string::npos) << reason;
}

INSTANTIATE_TEST_SUITE_P(Research, ResearchPlugin,
                         ::testing::Values("performer",
#ifdef PFA_TEST_HAVE_SPECTRAL
                                           "spectral",
#endif
                                           "quantum"));

TEST(ResearchPlugins, LseIsDeclinedWhereItIsNotMeaningful) {
  for (const char* name : {"performer", "quantum"}) {
    Engine engine(only(name));
    Problem p = make_problem(1, 2, 2, 64, 64, 64, PFA_DTYPE_FP32, false);
    p.want_lse = 1;
    std::string reason;
    EXPECT_FALSE(the_plugin(engine).supports(p, &reason)) << name;
    EXPECT_NE(reason.find("log-sum-exp"), std::string::npos) << reason;
  }
}

TEST(ResearchPlugins, QuantumDeclinesSimulationsTooLargeToRun) {
  ScopedEnv qubits("PFA_QUANTUM_QUBITS", "12");
  Engine engine(only("quantum"));
  Problem p = make_problem(4, 32, 32, 8192, 8192, 128, PFA_DTYPE_BF16, true);
  std::string reason;
  EXPECT_FALSE(the_plugin(engine).supports(p, &reason));
  EXPECT_NE(reason.find("12 qubits"), std::string::npos) << reason;
}

TEST(ResearchPlugins, BadSettingsAreLoadErrors) {
  ScopedEnv features("PFA_PERFORMER_FEATURES", "lots");
  Engine engine(only("performer"));
  ASSERT_FALSE(engine.load_errors().empty());
  EXPECT_NE(engine.load_errors()[0].message.find("PFA_PERFORMER_FEATURES"), std::string::npos)
      << engine.load_errors()[0].message;
}

TEST(ResearchPlugins, PerformerPriorFallsWithMoreFeatures) {
  Problem p = make_problem(1, 8, 8, 1024, 1024, 64, PFA_DTYPE_BF16, false);
  double few = 0, many = 0;
  {
    ScopedEnv features("PFA_PERFORMER_FEATURES", "64");
    Engine engine(only("performer"));
    few = the_plugin(engine).estimate(p).rel_error;
  }
  {
    ScopedEnv features("PFA_PERFORMER_FEATURES", "4096");
    Engine engine(only("performer"));
    many = the_plugin(engine).estimate(p).rel_error;
  }
  EXPECT_GT(few, 0);
  EXPECT_LT(many, few / 4);
}

TEST(ResearchPlugins, AccuracyBudgetKeepsThemOut) {
  EngineOptions options;
  for (const char* name : {"performer", "quantum"}) {
    options.plugins.paths.push_back(lib_dir() + "/pfa_plugin_" + name + ".so");
  }
  options.plugins.default_paths = false;
  Engine engine(options);
  Problem p = make_problem(1, 2, 2, 256, 256, 64, PFA_DTYPE_FP32, false);
  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(p, PFA_LAYOUT_BSHD, rng);
  auto opts = c.options();
  opts.max_rel_error = 0.01;
  EXPECT_THROW(engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), opts), Error);
}

#ifdef PFA_TEST_HAVE_SPECTRAL
TEST(ResearchPlugins, SpectralFnetModeDeclinesCausalAndLse) {
  ScopedEnv mode("PFA_SPECTRAL_MODE", "fnet");
  Engine engine(only("spectral"));
  const Plugin& plugin = the_plugin(engine);
  Problem p = make_problem(1, 2, 2, 64, 64, 64, PFA_DTYPE_FP32, true);
  std::string reason;
  EXPECT_FALSE(plugin.supports(p, &reason));
  EXPECT_NE(reason.find("causal"), std::string::npos) << reason;
  p.causal = 0;
  p.want_lse = 1;
  EXPECT_FALSE(plugin.supports(p, &reason));
  p.want_lse = 0;
  EXPECT_TRUE(plugin.supports(p));
  EXPECT_GE(plugin.estimate(p).rel_error, 1.0) << "FNet replaces attention";
}

TEST(ResearchPlugins, SpectralIsExactWhenBlocksKeepEveryMode) {
  ScopedEnv modes("PFA_SPECTRAL_MODES", "64");
  ScopedEnv block("PFA_SPECTRAL_BLOCK", "64");
  Engine engine(only("spectral"));
  Problem p = make_problem(1, 2, 2, 200, 200, 32, PFA_DTYPE_FP32, true);
  EXPECT_EQ(the_plugin(engine).estimate(p).rel_error, 0.0);
}
#endif

}  // namespace
}  // namespace pfa

// Faulty backends never cost the caller its answer: NaN outputs (with output checks on), C++
// exceptions thrown across the ABI and failing probes all end in the next candidate's correct
// output, and the circuit breaker takes a failing backend out, probes it after the cooldown, and
// takes it out again when the probe fails.
#include "attention_case.h"
#include "engine_fixture.h"

#include <pfa/engine.h>

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>

namespace pfa {
namespace {

struct Recorder : ExecutionObserver {
  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> runs;  // backend, failure message
  void on_execution(const Execution& e) noexcept override {
    std::lock_guard lock(mutex);
    runs.emplace_back(e.plugin.name(), e.message);
  }
};

test::AttentionCase small_case(std::mt19937_64& rng) {
  return test::make_case(make_problem(1, 2, 1, 9, 13, 16, PFA_DTYPE_BF16, true), PFA_LAYOUT_BSHD,
                         rng);
}

TEST(Faults, ExceptionsAcrossTheAbiAreContainedAndTheFallbackAnswers) {
  auto recorder = std::make_shared<Recorder>();
  EngineOptions options = test::test_plugins("faulty");
  options.observer = recorder;
  options.check_outputs = true;
  Engine engine(options);
  ASSERT_EQ(engine.plugins().size(), 4u);
  std::mt19937_64 rng(test::fresh_seed());
  auto c = small_case(rng);
  // throws_in_supports is never eligible; its exception became a reason.
  std::string reason;
  EXPECT_FALSE(engine.find_plugin("throws_in_supports")->supports(c.problem, &reason));
  EXPECT_NE(reason.find("supports() blew up"), std::string::npos) << reason;

  const Report r = engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), c.options());
  EXPECT_EQ(r.backend, "steady");
  EXPECT_EQ(r.attempts, 3);  // writes_nan, then throws_in_run, then steady
  EXPECT_LT(test::relative_error(c, test::reference_attention(c)), test::tolerance(PFA_DTYPE_BF16));
  ASSERT_EQ(recorder->runs.size(), 3u);
  EXPECT_EQ(recorder->runs[0].first, "writes_nan");
  EXPECT_NE(recorder->runs[0].second.find("NaN"), std::string::npos);
  EXPECT_EQ(recorder->runs[1].first, "throws_in_run");
  EXPECT_NE(recorder->runs[1].second.find("run() blew up"), std::string::npos);
}

TEST(Faults, WithoutOutputChecksANaNBackendIsTrustedAsDocumented) {
  EngineOptions options = test::test_plugins("faulty");
  Engine engine(options);
  std::mt19937_64 rng(test::fresh_seed());
  auto c = small_case(rng);
  AttentionOptions o = c.options();
  o.backend = "writes_nan";
  EXPECT_EQ(engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), o).backend, "writes_nan");
  EXPECT_EQ(c.out.count_non_finite(), c.out.numel());
}

TEST(Faults, BreakerOpensProbesAfterTheCooldownAndReopens) {
  auto recorder = std::make_shared<Recorder>();
  EngineOptions options = test::test_plugins("failing");
  options.observer = recorder;
  options.breaker_failures = 2;
  options.breaker_cooldown_s = 0.2;
  Engine engine(options);
  std::mt19937_64 rng(test::fresh_seed());
  auto run = [&] {
    auto c = small_case(rng);
    const Report r = engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), c.options());
    EXPECT_EQ(r.backend, "fallback");
    EXPECT_LT(test::relative_error(c, test::reference_attention(c)), test::tolerance(PFA_DTYPE_BF16));
    return r.attempts;
  };
  EXPECT_EQ(run(), 2);  // failure 1
  EXPECT_EQ(run(), 2);  // failure 2: the breaker opens
  EXPECT_EQ(run(), 1);  // open: always_fails skipped
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(run(), 2);  // half-open: one probe, which fails, and the breaker opens again
  EXPECT_EQ(run(), 1);  // open again
  size_t probes = 0;
  for (const auto& [name, message] : recorder->runs) probes += name == "always_fails";
  EXPECT_EQ(probes, 3u);
}

}  // namespace
}  // namespace pfa

// The engine routes by estimate, falls back when a backend fails, opens the circuit breaker after
// repeated failures, honours a forced backend, and explains what it cannot serve.
#include "attention_case.h"
#include "engine_fixture.h"

#include <pfa/engine.h>

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

namespace pfa {
namespace {

struct Counting : ExecutionObserver {
  std::mutex mutex;
  std::vector<std::pair<std::string, bool>> seen;
  void on_execution(const Execution& e) noexcept override {
    std::lock_guard lock(mutex);
    seen.emplace_back(e.plugin.name(), e.status == PFA_STATUS_OK);
  }
};

TEST(Engine, RoutesToTheBackendPredictedFastestAndComputesCorrectly) {
  Engine engine(test::test_plugins("good"));
  std::mt19937_64 rng(test::fresh_seed());
  for (auto dtype : {PFA_DTYPE_FP32, PFA_DTYPE_FP16, PFA_DTYPE_BF16}) {
    for (auto layout : {PFA_LAYOUT_BSHD, PFA_LAYOUT_BHSD}) {
      Problem p = make_problem(2, 6, 2, 13, 21, 24, dtype, true);
      p.want_lse = 1;
      auto c = test::make_case(p, layout, rng);
      SCOPED_TRACE(test::describe(c));
      const Report r = engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), c.options());
      EXPECT_EQ(r.backend, "fast_exact");
      EXPECT_EQ(r.attempts, 1);
      EXPECT_STREQ(r.detail.data(), "scalar");
      EXPECT_GT(r.latency_s, 0);
      const auto ref = test::reference_attention(c);
      EXPECT_LT(test::relative_error(c, ref), test::tolerance(dtype));
      EXPECT_LT(test::lse_max_error(c, ref), 1e-4);
    }
  }
}

TEST(Engine, SkipsABackendThatDeclinesAndExplainsWhy) {
  Engine engine(test::test_plugins("good"));
  const Problem p = make_problem(1, 2, 2, 8, 8, 13, PFA_DTYPE_FP32, false);
  const Explanation e = engine.explain(p, RoutingPolicy{});
  EXPECT_EQ(e.chosen, "fast_exact");
  ASSERT_EQ(e.candidates.size(), 3u);
  EXPECT_EQ(e.candidates.back().backend, "picky");
  EXPECT_FALSE(e.candidates.back().eligible);
  EXPECT_NE(e.candidates.back().reason.find("head_dim 13"), std::string::npos);
  EXPECT_LT(e.candidates[0].predicted_cost, e.candidates[1].predicted_cost);
}

TEST(Engine, ForcedBackendRunsOrSaysWhyNot) {
  Engine engine(test::test_plugins("good"));
  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(make_problem(1, 2, 2, 8, 8, 13, PFA_DTYPE_FP32, false),
                           PFA_LAYOUT_BSHD, rng);
  AttentionOptions o = c.options();
  o.backend = "slow_exact";
  EXPECT_EQ(engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), o).backend, "slow_exact");
  o.backend = "picky";
  try {
    engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), o);
    ADD_FAILURE() << "picky accepted head_dim 13";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
    EXPECT_NE(std::string(e.what()).find("head_dim 13"), std::string::npos) << e.what();
  }
}

TEST(Engine, FallsBackWhenTheChosenBackendFailsThenOpensTheBreaker) {
  auto observer = std::make_shared<Counting>();
  EngineOptions options = test::test_plugins("failing");
  options.observer = observer;
  options.breaker_failures = 2;
  options.breaker_cooldown_s = 3600;
  Engine engine(options);
  std::mt19937_64 rng(test::fresh_seed());
  for (int call = 0; call < 4; ++call) {
    auto c = test::make_case(make_problem(1, 2, 2, 9, 9, 16, PFA_DTYPE_FP32, false),
                             PFA_LAYOUT_BSHD, rng);
    const Report r = engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), c.options());
    EXPECT_EQ(r.backend, "fallback");
    EXPECT_EQ(r.attempts, call < 2 ? 2 : 1) << "call " << call;
    EXPECT_LT(test::relative_error(c, test::reference_attention(c)), 1e-4);
  }
  // Two failures opened the breaker; the failures and successes were all observed.
  ASSERT_EQ(observer->seen.size(), 6u);
  EXPECT_EQ(observer->seen[0], (std::pair<std::string, bool>{"always_fails", false}));
  EXPECT_EQ(observer->seen[1], (std::pair<std::string, bool>{"fallback", true}));
  EXPECT_EQ(observer->seen[5], (std::pair<std::string, bool>{"fallback", true}));
}

TEST(Engine, AllBackendsFailingGivesEveryMessage) {
  EngineOptions options = test::test_plugins("failing");
  Engine engine(options);
  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(make_problem(1, 1, 1, 4, 4, 8, PFA_DTYPE_FP32, false),
                           PFA_LAYOUT_BSHD, rng);
  AttentionOptions o = c.options();
  o.backend = "always_fails";
  try {
    engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), o);
    ADD_FAILURE() << "a failing backend succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::backend_failure);
    EXPECT_NE(std::string(e.what()).find("fails on purpose"), std::string::npos) << e.what();
  }
}

TEST(Engine, NoBackendForTheDeviceIsAClearError) {
  Engine engine(test::test_plugins("good"));
  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(make_problem(1, 1, 1, 4, 4, 8, PFA_DTYPE_FP32, false),
                           PFA_LAYOUT_BSHD, rng);
  DLTensor q = c.q.dl(), k = c.k.dl(), v = c.v.dl(), out = c.out.dl();
  for (DLTensor* t : {&q, &k, &v, &out}) t->device = DLDevice{kDLCUDA, 0};
  try {
    engine.attention(q, k, v, out, c.options());
    ADD_FAILURE() << "CUDA tensors accepted by CPU-only plugins";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
    EXPECT_NE(std::string(e.what()).find("device"), std::string::npos) << e.what();
  }
}

TEST(Engine, ServesManyThreadsAtOnce) {
  Engine engine(test::test_plugins("good"));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  const uint64_t seed = test::fresh_seed();
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(seed + t);
      for (int i = 0; i < 10; ++i) {
        auto c = test::make_case(make_problem(1, 2, 1, 5 + i, 7, 8, PFA_DTYPE_FP32, i % 2),
                                 PFA_LAYOUT_BSHD, rng);
        engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), c.options());
        if (!(test::relative_error(c, test::reference_attention(c)) < 1e-4)) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace pfa

// Load: many threads calling one engine, several engines in one process, and background training
// while calls continue. Every call's record is either in the store or counted as dropped or failed:
// the counts add up exactly.
#include "attention_case.h"

#include <pfa/engine.h>
#include <pfa/learner/background_learner.h>
#include <pfa/learner/learned_router.h>
#include <pfa/store/store.h>
#include <pfa/store/store_observer.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

namespace pfa {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

fs::path fresh_store(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() /
                       ("pfa_load_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir / "pfa.db";
}

EngineOptions good_plugins() {
  EngineOptions options;
  options.plugins.paths = {std::string(PFA_TEST_PLUGIN_DIR) + "/good"};
  options.plugins.default_paths = false;
  return options;
}

// Calls `engine` from `threads` threads for `seconds`, on small random problems of a few shapes;
// returns the number of calls, and counts wrong answers.
uint64_t hammer(Engine& engine, int threads, double seconds, std::atomic<int>& wrong,
                uint64_t seed) {
  std::atomic<uint64_t> calls{0};
  std::vector<std::thread> pool;
  const auto stop = Clock::now() + std::chrono::duration<double>(seconds);
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937_64 rng(seed + t);
      for (int i = 0; Clock::now() < stop; ++i) {
        auto c = test::make_case(make_problem(1, 2, 1, 3 + i % 5, 8, 16, PFA_DTYPE_FP32, i % 2),
                                 PFA_LAYOUT_BSHD, rng);
        engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), c.options());
        calls.fetch_add(1, std::memory_order_relaxed);
        if (i % 16 == 0 && !(test::relative_error(c, test::reference_attention(c)) < 1e-4)) ++wrong;
      }
    });
  }
  for (auto& t : pool) t.join();
  return calls.load();
}

TEST(Load, EveryCallIsRecordedOrCountedAsDropped) {
  const fs::path path = fresh_store("one");
  store::AsyncWriterOptions writer_options;
  writer_options.capacity = 256;  // small, so that overflow may really happen under load
  auto recorder = std::make_shared<store::StoreObserver>(path, writer_options);
  EngineOptions options = good_plugins();
  options.observer = recorder;
  Engine engine(options);
  std::atomic<int> wrong{0};
  const uint64_t calls = hammer(engine, 4, 1.5, wrong, test::fresh_seed());
  auto& writer = recorder->writer();
  writer.flush();
  store::Store store(path);
  EXPECT_GT(calls, 100u);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(static_cast<uint64_t>(store.count()) + writer.dropped() + writer.failed(), calls)
      << "stored " << store.count() << ", dropped " << writer.dropped() << ", failed "
      << writer.failed();
  RecordProperty("calls", std::to_string(calls));
  RecordProperty("dropped", std::to_string(writer.dropped()));
}

TEST(Load, SeveralEnginesShareOneStoreFile) {
  const fs::path path = fresh_store("many");
  std::vector<std::shared_ptr<store::StoreObserver>> recorders;
  std::vector<std::unique_ptr<Engine>> engines;
  for (int e = 0; e < 3; ++e) {
    recorders.push_back(std::make_shared<store::StoreObserver>(path));
    EngineOptions options = good_plugins();
    options.observer = recorders.back();
    engines.push_back(std::make_unique<Engine>(options));
  }
  std::atomic<int> wrong{0};
  std::atomic<uint64_t> calls{0};
  std::vector<std::thread> drivers;
  const uint64_t seed = test::fresh_seed();
  for (int e = 0; e < 3; ++e) {
    drivers.emplace_back([&, e] { calls += hammer(*engines[e], 2, 1.0, wrong, seed + 100 * e); });
  }
  for (auto& d : drivers) d.join();
  uint64_t lost = 0;
  for (auto& r : recorders) {
    r->writer().flush();
    lost += r->writer().dropped() + r->writer().failed();
  }
  store::Store store(path);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(static_cast<uint64_t>(store.count()) + lost, calls.load());
}

TEST(Load, CallsNeverWaitOnBackgroundTraining) {
  const fs::path path = fresh_store("train");
  auto recorder = std::make_shared<store::StoreObserver>(path);
  std::shared_ptr<learner::LearnedRouter> router;
  EngineOptions options = good_plugins();
  options.observer = recorder;
  options.make_router = [&router](const PluginList& plugins) {
    router = std::make_shared<learner::LearnedRouter>(plugins);
    return router;
  };
  Engine engine(options);
  learner::LearnerOptions learner_options;
  learner_options.min_records = 40;
  learner_options.min_new_records = 20;
  learner_options.poll_interval = std::chrono::milliseconds(50);
  learner::BackgroundLearner background(path, *router, learner_options);
  background.start();
  // Calls keep flowing (and are answered correctly) while models are trained and swapped in.
  std::atomic<int> wrong{0};
  const auto start = Clock::now();
  uint64_t calls = 0;
  while (background.swaps() < 2 && Clock::now() - start < std::chrono::seconds(20)) {
    calls += hammer(engine, 2, 0.25, wrong, test::fresh_seed());
  }
  background.stop();
  EXPECT_GE(background.swaps(), 1u) << background.last_error();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(calls, 100u);
  EXPECT_GE(router->stats().generation, 2u);
}

}  // namespace
}  // namespace pfa

// The learner against a real SQLite store: training from it, the swap gate (a worse model is not
// swapped in), the 20% retrain rule, the background thread, and the whole loop from an empty store.
#include "synthetic.h"

#include <pfa/error.h>
#include <pfa/learner/background_learner.h>
#include <pfa/learner/model_store.h>
#include <pfa/learner/self_learning_router.h>
#include <pfa/store/store.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <thread>

#include <unistd.h>

namespace pfa::learner {
namespace {

namespace fs = std::filesystem;

// A fresh store file per test, removed afterwards (with its WAL files).
class TempStore {
 public:
  TempStore() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("pfa_learner_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".db");
  }
  ~TempStore() {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path_.string() + suffix);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The records with backend names rotated (alpha's runs called beta, ...): a model trained on them
// ranks backends wrongly.
std::vector<store::ExecutionRecord> mislabelled(std::span<const store::ExecutionRecord> records) {
  std::vector<store::ExecutionRecord> out(records.begin(), records.end());
  for (auto& r : out) {
    const auto name = store::text(r.backend);
    store::set_text(r.backend, name == "alpha" ? "beta" : name == "beta" ? "gamma" : "alpha");
  }
  return out;
}

TEST(ModelStore, TrainsSavesAndActivatesFromTheStore) {
  TempStore temp;
  store::Store db(temp.path());
  EXPECT_EQ(load_active_model(db, Objective::latency), nullptr);
  try {
    train_from_store(db);
    FAIL() << "an empty store must not train";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::model);
  }
  const auto records = test::make_records(150, 2, 31);
  db.insert(records);
  const auto first = train_from_store(db);
  EXPECT_TRUE(first.activated);
  EXPECT_GT(first.model_id, 0);
  EXPECT_EQ(first.max_record_id, db.max_id());
  EXPECT_GT(first.trained.metrics.holdout.geomean_share_of_oracle, 0.93);
  const auto active = db.active_model("latency");
  ASSERT_TRUE(active.has_value());
  EXPECT_EQ(active->id, first.model_id);
  EXPECT_EQ(active->trained_on_records, static_cast<int64_t>(records.size()));
  const auto metrics = nlohmann::json::parse(active->metrics_json);
  EXPECT_TRUE(metrics["activated"].get<bool>());
  EXPECT_TRUE(metrics.contains("holdout_rmse_log"));
  const auto loaded = load_active_model(db, Objective::latency);
  ASSERT_NE(loaded, nullptr);
  EXPECT_EQ(loaded->to_json(), first.trained.model->to_json());

  // The same records again: an equal model routes as well, so it replaces the old one.
  const auto second = train_from_store(db);
  EXPECT_TRUE(second.activated);
  EXPECT_EQ(second.comparison.candidate.geomean_share_of_oracle,
            second.comparison.current.geomean_share_of_oracle);
}

TEST(BackgroundLearner, AWorseModelIsNotSwappedIn) {
  TempStore temp;
  {
    store::Store db(temp.path());
    db.insert(test::make_records(150, 2, 41));
  }
  const PluginList plugins = test::make_plugins();
  LearnedRouter router(plugins);
  bool sabotage = false;
  LearnerOptions options;
  options.trainer = [&](std::span<const store::ExecutionRecord> records, const TrainOptions& t) {
    return sabotage ? train(mislabelled(records), t) : train(records, t);
  };
  BackgroundLearner learner(temp.path(), router, options);
  auto steps = learner.step();
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_TRUE(steps[0].swapped) << steps[0].note;
  const auto good = router.model(Objective::latency);
  ASSERT_NE(good, nullptr);
  const int64_t good_id = steps[0].model_id;

  store::Store db(temp.path());
  db.insert(test::make_records(60, 2, 42));  // 40% more
  sabotage = true;
  steps = learner.step();
  EXPECT_TRUE(steps[0].trained);
  EXPECT_FALSE(steps[0].swapped);
  EXPECT_LT(steps[0].comparison.candidate.geomean_share_of_oracle,
            steps[0].comparison.current.geomean_share_of_oracle);
  EXPECT_NE(steps[0].note.find("kept the current"), std::string::npos) << steps[0].note;
  EXPECT_EQ(router.model(Objective::latency), good);
  EXPECT_EQ(db.active_model("latency")->id, good_id);
  EXPECT_EQ(learner.swaps(), 1u);
}

TEST(BackgroundLearner, RetrainsOnlyWhenTwentyPercentIsNew) {
  TempStore temp;
  store::Store db(temp.path());
  const PluginList plugins = test::make_plugins();
  LearnedRouter router(plugins);
  LearnerOptions options;
  options.min_records = 100;
  options.min_new_records = 10;
  options.tolerance = 1.0;  // this test is about when to retrain: every candidate wins
  BackgroundLearner learner(temp.path(), router, options);
  db.insert(test::make_records(10, 1, 51));  // 30 runs: below min_records
  EXPECT_FALSE(learner.step()[0].trained);
  db.insert(test::make_records(90, 1, 52));  // 300 runs
  EXPECT_TRUE(learner.step()[0].swapped);
  db.insert(test::make_records(10, 1, 53));  // 30 new: 10%
  auto step = learner.step()[0];
  EXPECT_FALSE(step.trained);
  EXPECT_EQ(step.new_records, 30);
  db.insert(test::make_records(15, 1, 54));  // 75 new: 25%
  EXPECT_TRUE(learner.step()[0].trained);

  // A new learner on the same store picks up the active model and its baseline.
  LearnedRouter other(plugins);
  BackgroundLearner again(temp.path(), other, options);
  EXPECT_NE(other.model(Objective::latency), nullptr);
  EXPECT_FALSE(again.step()[0].trained);
}

TEST(BackgroundLearner, TakesOverAModelAnotherProcessActivated) {
  TempStore temp;
  const PluginList plugins = test::make_plugins();
  LearnedRouter a_router(plugins), b_router(plugins);
  BackgroundLearner a(temp.path(), a_router), b(temp.path(), b_router);
  store::Store db(temp.path());
  db.insert(test::make_records(100, 2, 81));
  ASSERT_TRUE(a.step()[0].swapped);
  const auto step = b.step()[0];
  EXPECT_TRUE(step.swapped);
  EXPECT_FALSE(step.trained);  // taken over, not retrained
  EXPECT_EQ(step.model_id, db.active_model("latency")->id);
  ASSERT_NE(b_router.model(Objective::latency), nullptr);
  EXPECT_EQ(b_router.model(Objective::latency)->to_json(),
            a_router.model(Objective::latency)->to_json());
  EXPECT_FALSE(b.step()[0].swapped);  // nothing new since
}

TEST(BackgroundLearner, ThreadSwapsInAModelWhileRunning) {
  TempStore temp;
  const PluginList plugins = test::make_plugins();
  LearnedRouter router(plugins);
  LearnerOptions options;
  options.poll_interval = std::chrono::milliseconds(10);
  BackgroundLearner learner(temp.path(), router, options);
  learner.start();
  store::Store db(temp.path());
  db.insert(test::make_records(100, 2, 61));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  Decision d;
  const RoutingPolicy policy{};
  while (learner.swaps() == 0 && std::chrono::steady_clock::now() < deadline) {
    router.choose(make_problem(1, 8, 8, 256, 256, 64, PFA_DTYPE_FP32, false), policy, d);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  learner.stop();
  EXPECT_EQ(learner.swaps(), 1u) << learner.last_error();
  EXPECT_NE(router.model(Objective::latency), nullptr);
}

TEST(BackgroundLearner, FromAnEmptyStoreToBetterThanTheColdStart) {
  TempStore temp;
  const PluginList plugins = test::make_plugins();
  LearnedRouter router(plugins);
  LearnerOptions options;
  options.min_records = 200;
  BackgroundLearner learner(temp.path(), router, options);
  store::Store db(temp.path());

  std::mt19937_64 rng(77);
  std::normal_distribution<double> noise(0.0, 0.05);
  std::vector<Problem> workload, unseen;
  for (int i = 0; i < 100; ++i) workload.push_back(test::random_problem(rng));
  for (int i = 0; i < 200; ++i) unseen.push_back(test::random_problem(rng));
  const RoutingPolicy policy{};
  std::vector<store::ExecutionRecord> batch;
  for (int call = 0; call < 8000; ++call) {
    const Problem& p = workload[rng() % workload.size()];
    Decision d;
    router.choose(p, policy, d);
    const int backend = d.order[0];
    const double latency = test::true_latency(backend, p) * std::exp(noise(rng));
    auto record = test::make_record(p, backend, latency);
    record.explored = d.explored;
    batch.push_back(record);
    router.observe(p, policy, {d.order[0], true, latency, -1, d.explored});
    if (batch.size() == 250) {  // what the async writer does, synchronously
      db.insert(batch);
      batch.clear();
      learner.step();
    }
  }
  EXPECT_GE(learner.swaps(), 1u);
  EstimateRouter cold(plugins);
  LearnedRouterOptions quiet;
  quiet.exploration.enabled = false;
  LearnedRouter learned(plugins, quiet);
  learned.set_model(load_active_model(db, Objective::latency));
  auto pick = [](Router& r) {
    return [&r](const Problem& p) {
      Decision d;
      r.choose(p, RoutingPolicy{}, d);
      return static_cast<int>(d.order[0]);
    };
  };
  const double cold_share = test::geomean_share(unseen, pick(cold));
  const double learned_share = test::geomean_share(unseen, pick(learned));
  std::printf("from an empty store: cold start %.3f, learned %.3f share of oracle (unseen shapes), "
              "%llu swaps, %llu explored of %llu calls\n",
              cold_share, learned_share, static_cast<unsigned long long>(learner.swaps()),
              static_cast<unsigned long long>(router.stats().explored),
              static_cast<unsigned long long>(router.stats().calls));
  EXPECT_GT(learned_share, cold_share + 0.1);
  EXPECT_GT(learned_share, 0.9);
}

TEST(SelfLearningRouter, BuildsFromTheStoreForTheEngine) {
  TempStore temp;
  {
    store::Store db(temp.path());
    db.insert(test::make_records(100, 2, 71));
    train_from_store(db);
  }
  const PluginList plugins = test::make_plugins();
  SelfLearningOptions options;
  options.store_path = temp.path();
  options.learn_in_background = false;
  auto router = self_learning_router(options)(plugins);
  EXPECT_EQ(router->name(), "learned");
  const Problem big = make_problem(2, 16, 16, 2048, 2048, 128, PFA_DTYPE_FP32, false);
  const auto e = router->explain(big, RoutingPolicy{});
  EXPECT_EQ(e.chosen, "beta");
  EXPECT_NE(e.router.find("trained on"), std::string::npos);
}

TEST(SelfLearningRouter, ObeysTheStoresPins) {
  TempStore temp;
  const Problem big = make_problem(2, 16, 16, 2048, 2048, 128, PFA_DTYPE_FP32, false);
  {
    store::Store db(temp.path());
    db.insert(test::make_records(100, 2, 72));
    train_from_store(db);
    db.pin({.problem = big, .backend = "gamma"});
  }
  const PluginList plugins = test::make_plugins();
  SelfLearningOptions options;
  options.store_path = temp.path();
  options.learn_in_background = false;
  auto router = self_learning_router(options)(plugins);
  Decision d;
  router->choose(big, RoutingPolicy{}, d);
  EXPECT_EQ(plugins[d.order[0]]->name(), "gamma");
  EXPECT_EQ(router->explain(big, RoutingPolicy{}).chosen, "gamma");
}

}  // namespace
}  // namespace pfa::learner

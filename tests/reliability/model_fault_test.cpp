// A damaged routing model: truncated, bytes overwritten, or a tree that loops back on itself. The
// engine's learning router must not crash, must route by the plugins' estimates, must say so once,
// and every call must still get a correct answer.
#include "attention_case.h"

#include <pfa/engine.h>
#include <pfa/error.h>
#include <pfa/learner/cost_model.h>
#include <pfa/learner/self_learning_router.h>
#include <pfa/store/store.h>

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <vector>

namespace pfa {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() /
                       ("pfa_model_fault_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Runs of the test plugins on the small shapes the calls below use, so that a readable model
// covers them and routes by its predictions.
std::vector<store::ExecutionRecord> runs(std::mt19937_64& rng) {
  std::lognormal_distribution<double> noise(0.0, 0.1);
  std::vector<store::ExecutionRecord> out;
  for (int rep = 0; rep < 4; ++rep) {
    for (int64_t l = 2; l <= 16; ++l) {
      for (const char* backend : {"slow_exact", "fast_exact", "picky"}) {
        store::ExecutionRecord r;
        r.timestamp_us = 1'700'000'000'000'000 + static_cast<int64_t>(out.size());
        r.problem = make_problem(1, 2, 1, l, 8, 16, PFA_DTYPE_FP32, l % 2);
        r.latency_s = (std::string(backend) == "fast_exact" ? 2e-6 : 9e-6) * l * noise(rng);
        r.wall_s = r.latency_s;
        r.ok = true;
        store::set_text(r.backend, backend);
        store::set_text(r.device_name, "Test CPU");
        store::set_text(r.device_class, "cpu");
        out.push_back(r);
      }
    }
  }
  return out;
}

std::string good_model_json(std::mt19937_64& rng) {
  learner::FitOptions fit;
  fit.rounds = 20;
  fit.max_depth = 3;
  fit.min_rows_per_backend = 2;
  const auto records = runs(rng);
  return learner::CostModel::fit(records, fit)->to_json();
}

struct Served {
  std::vector<std::string> messages;  // what the router said about the model
  std::string router;                 // Explanation::router for the calls' objective
  std::vector<std::string> reasons;   // each candidate's basis
  int calls = 0;
  int wrong = 0;
};

// An engine on the test plugins whose router loads the store's active model; `calls` fresh random
// problems through it, every answer checked against the fp64 reference.
Served serve(const fs::path& store_path, int calls, uint64_t seed) {
  Served s;
  std::mutex mutex;
  learner::SelfLearningOptions learning;
  learning.store_path = store_path;
  learning.learn_in_background = false;
  learning.learner.on_model_error = [&](const std::string& message) {
    std::lock_guard lock(mutex);
    s.messages.push_back(message);
  };
  EngineOptions options;
  options.plugins.paths = {std::string(PFA_TEST_PLUGIN_DIR) + "/good"};
  options.plugins.default_paths = false;
  options.make_router = learner::self_learning_router(learning);
  Engine engine(options);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < calls; ++i) {
    auto c = test::make_case(make_problem(1, 2, 1, 2 + i % 15, 8, 16, PFA_DTYPE_FP32, i % 2),
                             PFA_LAYOUT_BSHD, rng);
    engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), c.options());
    ++s.calls;
    if (!(test::relative_error(c, test::reference_attention(c)) < 1e-4)) ++s.wrong;
  }
  const Explanation e =
      engine.explain(make_problem(1, 2, 1, 9, 8, 16, PFA_DTYPE_FP32, 1), RoutingPolicy{});
  s.router = e.router;
  for (const auto& c : e.candidates) s.reasons.push_back(c.reason);
  return s;
}

void activate(const fs::path& store_path, const std::string& json) {
  store::Store store(store_path);
  store::ModelRecord m;
  m.kind = "latency";
  m.model_json = json;
  m.metrics_json = "{}";
  store.save_model(m, /*activate=*/true);
}

void expect_estimates_and_said_once(const Served& s, const std::string& what) {
  EXPECT_EQ(s.wrong, 0) << what;
  ASSERT_EQ(s.messages.size(), 1u) << what << ": the damaged model must be reported exactly once";
  EXPECT_NE(s.messages[0].find("cannot be read"), std::string::npos) << s.messages[0];
  EXPECT_NE(s.messages[0].find("plugins' estimates"), std::string::npos) << s.messages[0];
  EXPECT_NE(s.router.find("plugin estimates"), std::string::npos) << what << ": " << s.router;
  for (const auto& r : s.reasons) EXPECT_EQ(r.rfind("plugin estimate", 0), 0u) << what << ": " << r;
}

TEST(DamagedModel, AReadableModelRoutesByItsPredictions) {
  // The control for the tests below: the same store with the model intact routes by the model.
  std::mt19937_64 rng(test::fresh_seed());
  const fs::path dir = fresh_dir("control");
  activate(dir / "pfa.db", good_model_json(rng));
  const Served s = serve(dir / "pfa.db", 60, rng());
  EXPECT_EQ(s.wrong, 0);
  EXPECT_TRUE(s.messages.empty()) << s.messages.front();
  EXPECT_NE(s.router.find("latency model trained on"), std::string::npos) << s.router;
  ASSERT_FALSE(s.reasons.empty());
  EXPECT_EQ(s.reasons[0].rfind("model prediction", 0), 0u) << s.reasons[0];
  fs::remove_all(dir);
}

TEST(DamagedModel, TruncatedModelFallsBackToEstimatesAndSaysSoOnce) {
  std::mt19937_64 rng(test::fresh_seed());
  const std::string json = good_model_json(rng);
  for (int round = 0; round < 4; ++round) {
    const size_t cut = std::uniform_int_distribution<size_t>(1, json.size() - 1)(rng);
    const fs::path dir = fresh_dir("truncated");
    activate(dir / "pfa.db", json.substr(0, cut));
    const Served s = serve(dir / "pfa.db", 40, rng());
    expect_estimates_and_said_once(s, "cut at byte " + std::to_string(cut));
    fs::remove_all(dir);
  }
}

TEST(DamagedModel, ATreeThatLoopsBackFallsBackInsteadOfHanging) {
  // A child index pointing at its own node: a tree walk (pfa's or XGBoost's) would never end.
  std::mt19937_64 rng(test::fresh_seed());
  std::string json = good_model_json(rng);
  const std::string key = "\"left_children\":[";
  const size_t at = json.find(key);
  ASSERT_NE(at, std::string::npos);
  const size_t first = at + key.size();
  const size_t end = json.find_first_of(",]", first);
  ASSERT_NE(json.substr(first, end - first), "-1") << "the first tree is a single leaf";
  json.replace(first, end - first, "0");
  const fs::path dir = fresh_dir("loop");
  activate(dir / "pfa.db", json);
  const Served s = serve(dir / "pfa.db", 40, rng());
  expect_estimates_and_said_once(s, "a self-loop in tree 0");
  ASSERT_EQ(s.messages.size(), 1u);
  EXPECT_NE(s.messages[0].find("damaged"), std::string::npos) << s.messages[0];
  fs::remove_all(dir);
}

TEST(DamagedModel, OverwrittenBytesNeverCrashTheRouter) {
  // Random bytes overwritten: either the model no longer reads (estimates, said once) or it still
  // does (a changed number, say) and routes by its predictions, silently. Never a crash or a wrong
  // answer.
  std::mt19937_64 rng(test::fresh_seed());
  const std::string json = good_model_json(rng);
  int unreadable = 0;
  for (int round = 0; round < 6; ++round) {
    std::string damaged = json;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int f = 0; f < flips; ++f) {
      damaged[rng() % damaged.size()] = static_cast<char>(rng() % 256);
    }
    const fs::path dir = fresh_dir("flipped");
    activate(dir / "pfa.db", damaged);
    const Served s = serve(dir / "pfa.db", 30, rng());
    EXPECT_EQ(s.wrong, 0);
    if (s.messages.empty()) {
      EXPECT_NE(s.router.find("latency model trained on"), std::string::npos) << s.router;
    } else {
      ++unreadable;
      expect_estimates_and_said_once(s, std::to_string(flips) + " bytes overwritten");
    }
    fs::remove_all(dir);
  }
  RecordProperty("unreadable_of_6", unreadable);
}

TEST(DamagedModel, TruncatedModelFileIsRefusedWithAModelError) {
  std::mt19937_64 rng(test::fresh_seed());
  const std::string json = good_model_json(rng);
  const fs::path dir = fresh_dir("file");
  const size_t cut = std::uniform_int_distribution<size_t>(1, json.size() - 1)(rng);
  std::ofstream(dir / "model.json", std::ios::binary) << json.substr(0, cut);
  try {
    learner::CostModel::load(dir / "model.json");
    ADD_FAILURE() << "a model cut at byte " << cut << " of " << json.size() << " was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::model);
    EXPECT_NE(std::string(e.what()).find("pfa-tune train"), std::string::npos) << e.what();
  }
  // The whole file still loads and predicts.
  std::ofstream(dir / "model.json", std::ios::binary | std::ios::trunc) << json;
  const auto model = learner::CostModel::load(dir / "model.json");
  const int ids[] = {0, 1, 2};
  double costs[3];
  EXPECT_TRUE(model->predict(make_problem(1, 2, 1, 9, 8, 16, PFA_DTYPE_FP32, 1), 0, ids, costs));
  for (double c : costs) EXPECT_GT(c, 0.0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace pfa

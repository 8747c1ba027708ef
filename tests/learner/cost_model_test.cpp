// The cost model: features, ranking, training, held-out metrics, and the XGBoost JSON round trip.
#include "synthetic.h"

#include <pfa/error.h>
#include <pfa/learner/cost_model.h>
#include <pfa/learner/features.h>
#include <pfa/learner/ranking.h>
#include <pfa/learner/training.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <unistd.h>

namespace pfa::learner {
namespace {

using test::kAlpha;
using test::kBeta;
using test::kGamma;

TEST(Features, ShapeFeaturesAreLogScaleAndProblemHashIsStable) {
  Problem p = make_problem(2, 16, 4, 1024, 2048, 128, PFA_DTYPE_BF16, true);
  float f[kShapeFeatures];
  shape_features(p, f);
  EXPECT_FLOAT_EQ(f[0], 1.0f);   // batch 2
  EXPECT_FLOAT_EQ(f[1], 4.0f);   // heads_q 16
  EXPECT_FLOAT_EQ(f[2], 2.0f);   // heads_kv 4
  EXPECT_FLOAT_EQ(f[3], 2.0f);   // GQA ratio 4
  EXPECT_FLOAT_EQ(f[4], 10.0f);  // seqlen_q
  EXPECT_FLOAT_EQ(f[5], 11.0f);  // seqlen_k
  EXPECT_FLOAT_EQ(f[6], 7.0f);   // head_dim
  EXPECT_NEAR(f[7], std::log2(attention_flops(p)), 1e-4);
  EXPECT_FLOAT_EQ(f[9], static_cast<float>(PFA_DTYPE_BF16));
  EXPECT_FLOAT_EQ(f[10], 1.0f);

  const uint64_t h = problem_hash(p, "cpu");
  Problem scaled = p;
  scaled.softmax_scale = 0.5f;
  EXPECT_EQ(problem_hash(scaled, "cpu"), h);
  EXPECT_NE(problem_hash(p, "cuda:sm90"), h);
  p.causal = 0;
  EXPECT_NE(problem_hash(p, "cpu"), h);
}

TEST(Features, DeviceClassesMatchByFamily) {
  FeatureSpace space({"a", "b"}, {"cpu", "cuda:sm90"});
  EXPECT_EQ(space.width(), kShapeFeatures + 4);
  EXPECT_EQ(space.device_class_id("cuda:sm90"), 1);
  EXPECT_EQ(space.device_class_id("cuda"), 1);
  EXPECT_EQ(space.device_class_id("rocm"), -1);
  EXPECT_EQ(space.backend_id("b"), 1);
  EXPECT_EQ(space.backend_id("c"), -1);
  std::vector<float> row(space.width());
  space.encode(make_problem(1, 8, 8, 64, 64, 64, PFA_DTYPE_FP32, false), 1, 0, row.data());
  EXPECT_EQ(row[kShapeFeatures + 0], 0.0f);
  EXPECT_EQ(row[kShapeFeatures + 1], 1.0f);
  EXPECT_EQ(row[kShapeFeatures + 2], 1.0f);
  EXPECT_EQ(row[kShapeFeatures + 3], 0.0f);
}

TEST(Ranking, TiesInsideTheNoiseBandGoByName) {
  const std::string_view names[] = {"zeta", "beta", "alpha", "delta"};
  const double cost[] = {1.00, 1.02, 1.50, 1.01};
  uint16_t order[] = {0, 1, 2, 3};
  rank_by_cost(order, 4, cost, names, 0.03);
  // zeta, beta and delta are within 3% of the best: name order; alpha is slower.
  EXPECT_EQ(order[0], 1);
  EXPECT_EQ(order[1], 3);
  EXPECT_EQ(order[2], 0);
  EXPECT_EQ(order[3], 2);
  uint16_t strict[] = {0, 1, 2, 3};
  rank_by_cost(strict, 4, cost, names, 0.0);
  EXPECT_EQ(strict[0], 0);
}

TEST(CostModel, LearnsTheSyntheticCostFunction) {
  const auto records = test::make_records(200, 2, 1);
  TrainOptions options;
  const TrainResult result = train(records, options);
  const ModelMetrics& m = result.metrics;
  EXPECT_EQ(m.records, records.size());
  EXPECT_GT(m.train_rows, records.size() / 2);
  EXPECT_GT(m.holdout_rows, 0u);
  EXPECT_EQ(m.train_rows + m.holdout_rows, records.size());
  EXPECT_LT(m.holdout_rmse_log, 0.3);
  EXPECT_GT(m.holdout.groups, 10u);
  EXPECT_GT(m.holdout.geomean_share_of_oracle, 0.93);
  const auto metrics = nlohmann::json::parse(m.to_json());
  EXPECT_EQ(metrics["objective"], "latency");
  EXPECT_TRUE(metrics.contains("geomean_share_of_oracle"));
}

TEST(CostModel, SimulatedBackendsDoNotSetTheOracle) {
  const auto real = test::make_records(150, 1, 15);
  auto with_simulated = real;
  for (const auto& r : real) {
    if (store::text(r.backend) != "alpha") continue;
    auto s = r;
    store::set_text(s.backend, "photon");
    s.latency_s = r.latency_s / 100;  // modelled: far faster than anything real
    s.simulated = true;
    with_simulated.push_back(s);
  }
  const auto a = train(real).metrics;
  const auto b = train(with_simulated).metrics;
  EXPECT_EQ(a.holdout.groups, b.holdout.groups);
  EXPECT_GT(b.holdout.geomean_share_of_oracle, 0.93);
  TrainOptions what_if;
  what_if.score_all_backends = true;
  const auto c = train(with_simulated, what_if).metrics;
  EXPECT_EQ(c.holdout.groups, b.holdout.groups);
  EXPECT_GT(c.holdout.geomean_share_of_oracle, 0.93);  // the model learned photon is fastest
}

TEST(CostModel, FailedRunsTeachNothing) {
  auto records = test::make_records(60, 1, 2);
  const size_t good = records.size();
  // Failed runs with absurd latencies: if they were learned from, beta would look terrible.
  std::mt19937_64 rng(3);
  for (int i = 0; i < 500; ++i) {
    records.push_back(test::make_record(test::random_problem(rng), kBeta, 1e3, false));
  }
  TrainOptions options;
  options.holdout_fraction = 0;
  const auto result = train(records, options);
  EXPECT_EQ(result.metrics.failed, 500u);
  EXPECT_EQ(result.metrics.train_rows, good);
  const Problem big = make_problem(4, 16, 16, 4096, 4096, 128, PFA_DTYPE_FP32, false);
  const int beta = result.model->features().backend_id("beta");
  double predicted = 0;
  ASSERT_TRUE(result.model->predict(big, 0, std::span<const int>(&beta, 1),
                                    std::span<double>(&predicted, 1)));
  EXPECT_LT(predicted, 10 * test::true_latency(kBeta, big));

  std::vector<store::ExecutionRecord> only_failed(records.begin() + static_cast<long>(good),
                                                  records.end());
  try {
    train(only_failed, options);
    FAIL() << "training on failed runs only must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::model);
    EXPECT_NE(std::string(e.what()).find("pfa-tune bench"), std::string::npos);
  }
}

TEST(CostModel, ForeignRecordsTeachNothingUnlessAsked) {
  auto records = test::make_records(60, 1, 4);
  const size_t local = records.size();
  // Another machine's runs, imported: beta looks 1000x slower there.
  for (size_t i = 0; i < local; ++i) {
    auto r = records[i];
    if (store::text(r.backend) == "beta") r.latency_s *= 1e3;
    r.source = store::RecordSource::imported;
    store::set_text(r.device_name, "Another CPU");
    records.push_back(r);
  }
  TrainOptions options;
  options.holdout_fraction = 0;
  const auto result = train(records, options);
  EXPECT_EQ(result.metrics.foreign, local);
  EXPECT_EQ(result.metrics.train_rows, local);
  const Problem p = records.front().problem;
  const int beta = result.model->features().backend_id("beta");
  double predicted = 0;
  ASSERT_TRUE(result.model->predict(p, 0, std::span<const int>(&beta, 1),
                                    std::span<double>(&predicted, 1)));
  EXPECT_LT(predicted, 10 * test::true_latency(kBeta, p));
  // Measurement counts (what exploration reads) ignore them too.
  const uint64_t key = problem_hash(p, "cpu");
  EXPECT_EQ(result.model->measurements(key, beta), 1);

  options.include_foreign = true;
  const auto with_foreign = train(records, options);
  EXPECT_EQ(with_foreign.metrics.foreign, 0u);
  EXPECT_EQ(with_foreign.metrics.train_rows, 2 * local);
}

TEST(CostModel, RunsOfADeviceThisMachineLacksTeachNothingUnlessAsked) {
  // One store, two cards of one class: runs recorded here on the other card (not imported) must
  // not steer this one when training is told which devices this machine has.
  auto records = test::make_records(60, 1, 4);
  const size_t local = records.size();
  const std::string here(store::text(records.front().device_name));
  for (size_t i = 0; i < local; ++i) {
    auto r = records[i];
    if (store::text(r.backend) == "beta") r.latency_s *= 1e3;
    store::set_text(r.device_name, "The other card");
    records.push_back(r);
  }
  TrainOptions options;
  options.holdout_fraction = 0;
  options.devices = {here};
  const auto result = train(records, options);
  EXPECT_EQ(result.metrics.foreign, local);
  EXPECT_EQ(result.metrics.train_rows, local);
  const Problem p = records.front().problem;
  const int beta = result.model->features().backend_id("beta");
  double predicted = 0;
  ASSERT_TRUE(result.model->predict(p, 0, std::span<const int>(&beta, 1),
                                    std::span<double>(&predicted, 1)));
  EXPECT_LT(predicted, 10 * test::true_latency(kBeta, p));

  options.devices.clear();  // no device list: every device's runs count
  EXPECT_EQ(train(records, options).metrics.train_rows, 2 * local);
  options.devices = {here};
  options.include_foreign = true;
  EXPECT_EQ(train(records, options).metrics.train_rows, 2 * local);
}

TEST(CostModel, SaveLoadRoundTripKeepsPredictionsAndXGBoostFormat) {
  const auto records = test::make_records(80, 1, 4);
  TrainOptions options;
  options.holdout_fraction = 0;
  const auto model = train(records, options).model;
  const auto path = std::filesystem::temp_directory_path() /
                    ("pfa_model_" + std::to_string(::getpid()) + ".json");
  model->save(path);
  const auto loaded = CostModel::load(path);
  std::filesystem::remove(path);

  const std::vector<int> ids = {0, 1, 2};
  std::mt19937_64 rng(5);
  for (int i = 0; i < 50; ++i) {
    const Problem p = test::random_problem(rng);
    std::vector<double> a(3), b(3);
    ASSERT_TRUE(model->predict(p, 0, ids, a));
    ASSERT_TRUE(loaded->predict(p, 0, ids, b));
    for (int k = 0; k < 3; ++k) EXPECT_EQ(a[k], b[k]);
    EXPECT_EQ(model->measurements(problem_hash(p, "cpu"), 1),
              loaded->measurements(problem_hash(p, "cpu"), 1));
  }
  EXPECT_EQ(loaded->features().backends(), model->features().backends());
  EXPECT_EQ(loaded->trained_rows(), model->trained_rows());
  EXPECT_EQ(loaded->to_json(), model->to_json());

  // XGBoost's own JSON schema: version, learner.gradient_booster, learner_model_param, objective.
  const auto doc = nlohmann::json::parse(model->to_json());
  ASSERT_TRUE(doc.contains("version"));
  EXPECT_EQ(doc["version"][0], 1);
  const auto& learner = doc["learner"];
  EXPECT_EQ(learner["gradient_booster"]["name"], "gbtree");
  EXPECT_EQ(learner["objective"]["name"], "reg:squarederror");
  EXPECT_EQ(learner["learner_model_param"]["num_feature"],
            std::to_string(model->features().width()));
  EXPECT_EQ(learner["feature_names"].size(), model->features().width());
  EXPECT_EQ(learner["feature_names"][0], "log2_batch");
  EXPECT_GT(learner["gradient_booster"]["model"]["trees"].size(), 10u);
  const auto meta = nlohmann::json::parse(learner["attributes"]["pfa_meta"].get<std::string>());
  EXPECT_EQ(meta["format"], "pfa-cost-model");
  EXPECT_EQ(meta["objective"], "latency");
}

TEST(CostModel, OwnTreeWalkMatchesXGBoostPredictions) {
  TrainOptions options;
  options.holdout_fraction = 0;
  const auto model = train(test::make_records(300, 2, 8), options).model;
  ASSERT_TRUE(model->native_inference());
  const std::vector<int> ids = {0, 1, 2};
  std::mt19937_64 rng(9);
  for (int i = 0; i < 2000; ++i) {
    Problem p = test::random_problem(rng);
    if (i % 3 == 0) p.seqlen_k = 1 + static_cast<int64_t>(rng() % 20000);  // off the grid
    std::vector<double> mine(3), theirs(3);
    ASSERT_TRUE(model->predict(p, 0, ids, mine));
    ASSERT_TRUE(model->predict_xgboost(p, 0, ids, theirs));
    for (int k = 0; k < 3; ++k) ASSERT_NEAR(mine[k], theirs[k], 1e-6 * theirs[k]) << to_string(p);
  }
}

// Python's xgboost opens the saved file and predicts what we predict. Skipped where Python has no
// xgboost (Debian: python3-xgboost).
TEST(CostModel, PythonXGBoostOpensTheSavedModel) {
  std::string python;
  for (const char* candidate : {"python3", "/usr/bin/python3"}) {
    if (std::system((std::string(candidate) + " -c 'import xgboost' >/dev/null 2>&1").c_str()) == 0) {
      python = candidate;
      break;
    }
  }
  if (python.empty()) GTEST_SKIP() << "no python3 with xgboost here";
  TrainOptions options;
  options.holdout_fraction = 0;
  const auto model = train(test::make_records(100, 1, 12), options).model;
  const auto dir = std::filesystem::temp_directory_path();
  const auto tag = std::to_string(::getpid());
  const auto model_path = dir / ("pfa_py_model_" + tag + ".json");
  const auto rows_path = dir / ("pfa_py_rows_" + tag + ".csv");
  const auto out_path = dir / ("pfa_py_out_" + tag + ".txt");
  model->save(model_path);
  const size_t width = model->features().width();
  std::vector<float> rows;
  std::mt19937_64 rng(13);
  {
    std::ofstream csv(rows_path);
    csv.precision(9);
    for (int i = 0; i < 20; ++i) {
      std::vector<float> row(width);
      model->features().encode(test::random_problem(rng), 0, i % 3, row.data());
      for (size_t k = 0; k < width; ++k) csv << (k ? "," : "") << row[k];
      csv << "\n";
      rows.insert(rows.end(), row.begin(), row.end());
    }
  }
  const std::string script =
      "import sys, numpy, xgboost\n"
      "b = xgboost.Booster(model_file=sys.argv[1])\n"
      "x = numpy.loadtxt(sys.argv[2], delimiter=',', dtype=numpy.float32, ndmin=2)\n"
      "p = b.predict(xgboost.DMatrix(x, feature_names=b.feature_names))\n"
      "open(sys.argv[3], 'w').write('\\n'.join(repr(float(v)) for v in p))\n";
  const auto script_path = dir / ("pfa_py_" + tag + ".py");
  std::ofstream(script_path) << script;
  const int rc = std::system((python + " " + script_path.string() + " " + model_path.string() + " " +
                              rows_path.string() + " " + out_path.string())
                                 .c_str());
  ASSERT_EQ(rc, 0);
  std::ifstream in(out_path);
  const auto ours = model->predict_log(rows);
  for (size_t i = 0; i < ours.size(); ++i) {
    double theirs = 0;
    ASSERT_TRUE(in >> theirs);
    // Python gives the booster's raw output: ln(cost) - ln(FLOPs).
    const double log_cost = theirs + static_cast<double>(rows[i * width + 7]) * std::log(2.0);
    EXPECT_NEAR(log_cost, ours[i], 1e-4);
  }
  for (const auto& p : {model_path, rows_path, out_path, script_path}) std::filesystem::remove(p);
}

TEST(CostModel, LearnsEnergyAndEnergyDelay) {
  // Energy = latency x a per-backend power: alpha 30 W, beta 200 W, gamma 80 W.
  auto records = test::make_records(150, 1, 14);
  const double power[] = {30, 200, 80};
  for (auto& r : records) {
    const auto name = store::text(r.backend);
    r.energy_j = r.latency_s * power[name == "alpha" ? 0 : name == "beta" ? 1 : 2];
  }
  const Problem p = make_problem(2, 8, 8, 1024, 1024, 64, PFA_DTYPE_FP32, false);
  for (Objective objective : {Objective::energy, Objective::energy_delay}) {
    TrainOptions options;
    options.holdout_fraction = 0;
    options.fit.objective = objective;
    const auto model = train(records, options).model;
    EXPECT_EQ(model->objective(), objective);
    for (int b = 0; b < 3; ++b) {
      const int id = model->features().backend_id(test::kNames[b]);
      double predicted = 0;
      ASSERT_TRUE(model->predict(p, 0, std::span<const int>(&id, 1), std::span<double>(&predicted, 1)));
      const double latency = test::true_latency(b, p);
      const double energy = latency * power[b];
      const double truth = objective == Objective::energy ? energy : energy * latency;
      EXPECT_NEAR(std::log(predicted), std::log(truth), 0.3) << objective_name(objective) << " " << b;
    }
  }
}

TEST(CostModel, RejectsJsonItDidNotWrite) {
  EXPECT_THROW(CostModel::from_json("not json"), Error);
  EXPECT_THROW(CostModel::from_json(R"({"learner": {"attributes": {}}})"), Error);
  EXPECT_THROW(CostModel::load("/nonexistent/model.json"), Error);
}

TEST(CostModel, CoverageSaysWhereTheModelWasTrained) {
  // Only small problems of alpha and beta: gamma unseen, big problems outside the range.
  std::vector<store::ExecutionRecord> records;
  for (int64_t seq : {32, 64, 128}) {
    for (int rep = 0; rep < 5; ++rep) {
      const Problem p = make_problem(1, 8, 8, seq, seq, 64, PFA_DTYPE_FP32, rep % 2);
      records.push_back(test::make_record(p, kAlpha, test::true_latency(kAlpha, p)));
      records.push_back(test::make_record(p, kBeta, test::true_latency(kBeta, p)));
    }
  }
  FitOptions options;
  const auto model = CostModel::fit(records, options);
  const Problem small = make_problem(1, 8, 8, 64, 64, 64, PFA_DTYPE_FP32, false);
  const Problem huge = make_problem(8, 32, 32, 16384, 16384, 128, PFA_DTYPE_FP32, false);
  const char* why = nullptr;
  EXPECT_TRUE(model->covers(model->features().backend_id("alpha"), 0, small));
  EXPECT_FALSE(model->covers(model->features().backend_id("alpha"), 0, huge, &why));
  EXPECT_NE(std::string(why).find("outside"), std::string::npos);
  EXPECT_FALSE(model->covers(model->features().backend_id("gamma"), 0, small, &why));
  EXPECT_NE(std::string(why).find("never seen"), std::string::npos);
  // seq 64, not causal: repetitions 0, 2 and 4.
  EXPECT_EQ(model->measurements(problem_hash(small, "cpu"), model->features().backend_id("beta")),
            3);
  (void)kGamma;
}

}  // namespace
}  // namespace pfa::learner

// The learning loop without a store: start with no records, route with the cold-start rule plus
// bounded exploration, learn from what was measured, and end routing better than the cold start.
#include "synthetic.h"

#include <pfa/learner/learned_router.h>
#include <pfa/learner/training.h>

#include <gtest/gtest.h>

namespace pfa::learner {
namespace {

TEST(LearningLoop, StartsEmptyAndEndsBetterThanTheColdStartRule) {
  const PluginList plugins = test::make_plugins();
  LearnedRouterOptions options;
  options.exploration.seed = 42;
  LearnedRouter router(plugins, options);
  const RoutingPolicy policy{};

  std::mt19937_64 rng(1234);
  std::normal_distribution<double> noise(0.0, 0.05);
  std::vector<Problem> workload;  // the shapes this application runs
  for (int i = 0; i < 120; ++i) workload.push_back(test::random_problem(rng));
  std::vector<Problem> unseen;  // shapes it never ran, for the final score
  for (int i = 0; i < 200; ++i) unseen.push_back(test::random_problem(rng));

  std::vector<store::ExecutionRecord> records;
  size_t trained_on = 0;
  for (int call = 0; call < 8000; ++call) {
    const Problem& p = workload[rng() % workload.size()];
    Decision d;
    router.choose(p, policy, d);
    ASSERT_GT(d.count, 0);
    const int backend = d.order[0];
    const double latency = test::true_latency(backend, p) * std::exp(noise(rng));
    auto record = test::make_record(p, backend, latency);
    record.explored = d.explored;
    records.push_back(record);
    router.observe(p, policy, {d.order[0], true, latency, -1, d.explored});
    // Retrain once new records are 20% of the last training set (and at least 200).
    if (records.size() >= 200 && records.size() >= trained_on + std::max<size_t>(200, trained_on / 5)) {
      TrainOptions train_options;
      train_options.holdout_fraction = 0;
      router.set_model(train(records, train_options).model);
      trained_on = records.size();
    }
  }
  ASSERT_NE(router.model(Objective::latency), nullptr);
  const auto stats = router.stats();
  EXPECT_LE(stats.explored, static_cast<uint64_t>(0.05 * 8000) + options.exploration.burst);

  EstimateRouter cold(plugins);
  LearnedRouterOptions quiet = options;
  quiet.exploration.enabled = false;
  LearnedRouter learned(plugins, quiet);
  learned.set_model(router.model(Objective::latency));
  auto pick = [&](Router& r) {
    return [&r](const Problem& p) {
      Decision d;
      r.choose(p, RoutingPolicy{}, d);
      return static_cast<int>(d.order[0]);
    };
  };
  const double cold_share = test::geomean_share(unseen, pick(cold));
  const double learned_share = test::geomean_share(unseen, pick(learned));
  const double learned_seen = test::geomean_share(workload, pick(learned));
  std::printf("share of oracle on unseen shapes: cold start %.3f, learned %.3f (seen %.3f); "
              "%zu records, %llu explored\n",
              cold_share, learned_share, learned_seen, records.size(),
              static_cast<unsigned long long>(stats.explored));
  EXPECT_GT(learned_share, cold_share + 0.1);
  EXPECT_GT(learned_share, 0.9);
  EXPECT_GT(learned_seen, 0.95);
}

}  // namespace
}  // namespace pfa::learner

// The learned router's costs: a cached decision, a decision-cache miss that asks the cost model,
// one model prediction on its own (the model's own tree walk and, as baseline, XGBoost's C API),
// and retraining from 10k and 100k records.
//
// Baselines measured in the same run: the timer's own cost (an empty timed region); the cold-start
// EstimateRouter, which asks every plugin on every call; a miss without a model (plugin estimates
// only). Backends are three in-process synthetic plugins (tests/learner/synthetic.h) so the figures
// are the router's own, not a plugin's.
//
//   router_bench [--quick] [--out FILE] [--commit HASH]
#include "synthetic.h"

#include <pfa/learner/learned_router.h>
#include <pfa/learner/training.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string shell(const std::string& command) {
  std::string out;
  if (FILE* f = popen(command.c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof buf, f)) out += buf;
    pclose(f);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

struct Stats {
  double p50, p99, mean;
};

Stats stats_of(std::vector<double> ns) {
  std::sort(ns.begin(), ns.end());
  double sum = 0;
  for (double v : ns) sum += v;
  return {ns[ns.size() / 2], ns[std::min(ns.size() - 1, ns.size() * 99 / 100)],
          sum / static_cast<double>(ns.size())};
}

template <class Op>
std::vector<double> time_each(size_t n, Op&& op) {
  std::vector<double> ns;
  ns.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    op(i);
    const auto t1 = Clock::now();
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  return ns;
}

// Mean over a tight loop: no timer inside, so it shows the call's own cost.
template <class Op>
double mean_loop(size_t n, Op&& op) {
  const auto t0 = Clock::now();
  for (size_t i = 0; i < n; ++i) op(i);
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() /
         static_cast<double>(n);
}

struct Row {
  std::string what;
  Stats s;
  double loop_mean_ns;  // < 0: not measured
  std::string note;
};

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string out_arg, commit;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--quick") {
      quick = true;
    } else if (a == "--out") {
      out_arg = next();
    } else if (a == "--commit") {
      commit = next();
    } else {
      std::cerr << "usage: router_bench [--quick] [--out FILE] [--commit HASH]\n";
      return 2;
    }
  }
  if (commit.empty()) {
    commit = shell("git -C '" + std::string(PFA_SOURCE_DIR) + "' rev-parse --short HEAD 2>/dev/null");
    if (commit.empty()) commit = "unknown";
    const std::string dirty =
        shell("git -C '" + std::string(PFA_SOURCE_DIR) + "' status --porcelain -- learner 2>/dev/null");
    if (!dirty.empty()) commit += " (learner/ modified)";
  }
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  const fs::path out_file = out_arg.empty() ? fs::path(PFA_SOURCE_DIR) / "bench" / "results" /
                                                  ("router_" + std::string(date) + ".md")
                                            : fs::path(out_arg);
  const std::string load_before = load_average();

  using namespace pfa;
  using namespace pfa::learner;
  const PluginList plugins = test::make_plugins();
  const RoutingPolicy policy{};
  std::vector<Row> rows;
  const size_t n = quick ? 20000 : 200000;

  TrainOptions train_options;
  train_options.holdout_fraction = 0;
  const auto model = train(test::make_records(300, 2, 1), train_options).model;

  // Timer baseline.
  rows.push_back({"empty timed region (timer baseline)", stats_of(time_each(n, [](size_t) {})), -1,
                  ""});

  // Cached decisions: a workload of 64 shapes, all cached.
  std::mt19937_64 rng(3);
  std::vector<Problem> hot;
  for (int i = 0; i < 64; ++i) hot.push_back(test::random_problem(rng));
  {
    LearnedRouterOptions options;  // exploration on: its checks are part of the hit path
    LearnedRouter router(plugins, options);
    router.set_model(model);
    Decision d;
    for (const auto& p : hot) router.choose(p, policy, d);
    // Let exploration's per-bucket counts fill so hits are plain hits.
    for (int i = 0; i < 2000; ++i) {
      const Problem& p = hot[static_cast<size_t>(i) % hot.size()];
      router.choose(p, policy, d);
      router.observe(p, policy, {d.order[0], true, 1e-3, -1, d.explored});
    }
    const auto each = time_each(n, [&](size_t i) { router.choose(hot[i % hot.size()], policy, d); });
    const double loop = mean_loop(n, [&](size_t i) { router.choose(hot[i % hot.size()], policy, d); });
    rows.push_back({"LearnedRouter::choose, cached decision (64 hot shapes)", stats_of(each), loop,
                    "no allocation, no lock"});

    // Two threads on the same router (the machine's cores).
    std::vector<double> per_thread(2);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        Decision local;
        per_thread[static_cast<size_t>(t)] = mean_loop(n, [&](size_t i) {
          router.choose(hot[(i + static_cast<size_t>(t) * 17) % hot.size()], policy, local);
        });
      });
    }
    for (auto& t : threads) t.join();
    rows.push_back({"cached decision, 2 threads at once (mean per call, each thread)",
                    {per_thread[0], per_thread[1], (per_thread[0] + per_thread[1]) / 2}, -1,
                    "p50/p99 columns: thread 1 / thread 2 mean"});
  }
  {
    EstimateRouter router(plugins);
    Decision d;
    const auto each = time_each(n, [&](size_t i) { router.choose(hot[i % hot.size()], policy, d); });
    const double loop = mean_loop(n, [&](size_t i) { router.choose(hot[i % hot.size()], policy, d); });
    rows.push_back({"baseline: EstimateRouter::choose (asks every plugin each call)", stats_of(each),
                    loop, "3 in-process plugins"});
  }

  // Misses: more distinct shapes than cache slots, visited once each.
  const size_t n_miss = quick ? 5000 : 40000;
  std::vector<Problem> cold;
  for (size_t i = 0; i < n_miss; ++i) {
    Problem p = test::random_problem(rng);
    p.seqlen_k = 1 + static_cast<int64_t>(i);  // distinct bucket per call
    cold.push_back(p);
  }
  {
    LearnedRouterOptions options;
    options.exploration.enabled = false;
    options.cache_slots = 1024;
    LearnedRouter router(plugins, options);
    router.set_model(model);
    Decision d;
    const auto each = time_each(n_miss, [&](size_t i) { router.choose(cold[i], policy, d); });
    rows.push_back({"LearnedRouter::choose, cache miss, model asked for 3 candidates", stats_of(each),
                    -1, "eligibility + estimates + one model prediction + cache insert"});
    const auto s = router.stats();
    if (s.misses < n_miss) std::cerr << "warning: expected every call to miss\n";
  }
  {
    LearnedRouterOptions options;
    options.exploration.enabled = false;
    options.cache_slots = 1024;
    LearnedRouter router(plugins, options);
    Decision d;
    const auto each = time_each(n_miss, [&](size_t i) { router.choose(cold[i], policy, d); });
    rows.push_back({"baseline: cache miss without a model (plugin estimates)", stats_of(each), -1, ""});
  }
  {
    const std::vector<int> ids = {0, 1, 2};
    std::vector<double> costs(3);
    const auto own3 = time_each(n_miss, [&](size_t i) { model->predict(cold[i], 0, ids, costs); });
    rows.push_back({"CostModel::predict (own tree walk), 3 rows", stats_of(own3), -1,
                    model->native_inference() ? "" : "XGBoost fallback"});
    const auto xgb3 =
        time_each(n_miss, [&](size_t i) { model->predict_xgboost(cold[i], 0, ids, costs); });
    rows.push_back({"baseline: XGBoost PredictFromDense (proxy DMatrix), 3 rows", stats_of(xgb3), -1,
                    "same model, same rows"});
    const auto xgb1 = time_each(n_miss, [&](size_t i) {
      model->predict_xgboost(cold[i], 0, std::span<const int>(ids.data(), 1),
                             std::span<double>(costs.data(), 1));
    });
    rows.push_back({"baseline: XGBoost PredictFromDense, 1 row", stats_of(xgb1), -1, ""});
  }

  // Retraining.
  struct TrainRow {
    size_t records;
    int threads;
    double seconds, fit_seconds;
    size_t json_bytes;
    double share;
  };
  std::vector<TrainRow> trains;
  for (size_t shapes : {size_t{1700}, size_t{17000}}) {
    if (quick && shapes > 2000) break;
    const auto records = test::make_records(shapes, 2, 9);  // 3 backends x 2 repeats per shape
    for (int threads : {1, 2}) {
      TrainOptions t;
      t.fit.threads = threads;
      const auto t0 = Clock::now();
      const auto result = train(records, t);
      const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      TrainOptions fit_only = t;
      fit_only.holdout_fraction = 0;
      const auto f0 = Clock::now();
      const auto fitted = CostModel::fit(records, fit_only.fit);
      const double fit_seconds = std::chrono::duration<double>(Clock::now() - f0).count();
      trains.push_back({records.size(), threads, seconds, fit_seconds, fitted->to_json().size(),
                        result.metrics.holdout.geomean_share_of_oracle});
    }
  }
  const std::string load_after = load_average();

  std::ostringstream md;
  md << "# Learned router: decision cost and retrain time\n\n"
     << "- machine: " << cpu_model() << ", " << std::thread::hardware_concurrency()
     << " hardware threads\n"
     << "- date: " << date << "; commit: " << commit << "; load average before/after: " << load_before
     << " / " << load_after << "\n"
     << "- backends: 3 synthetic in-process plugins (tests/learner/synthetic.h); model: XGBoost "
        "1.7 hist, "
     << FitOptions{}.rounds << " rounds, depth " << FitOptions{}.max_depth << ", trained on "
     << model->trained_rows() << " runs\n"
     << "- each call timed on its own (steady_clock); \"loop mean\" times a tight loop without "
        "the timer. Targets: cached decision < 1 us, miss with the model < 20 us.\n\n"
     << "| what | p50 ns | p99 ns | mean ns | loop mean ns | note |\n|---|---|---|---|---|---|\n";
  char line[512];
  for (const auto& r : rows) {
    std::snprintf(line, sizeof line, "| %s | %.0f | %.0f | %.0f | %s | %s |\n", r.what.c_str(),
                  r.s.p50, r.s.p99, r.s.mean,
                  r.loop_mean_ns >= 0 ? std::to_string(static_cast<long>(r.loop_mean_ns)).c_str() : "",
                  r.note.c_str());
    md << line;
  }
  md << "\n## Retrain from scratch\n\n"
     << "train() = split by problem, fit on 80%, score the 20% held out (RMSE, share of oracle); "
        "fit = CostModel::fit on all rows. Records: synthetic, 3 backends x 2 repeats per shape.\n\n"
     << "| records | XGBoost threads | train() s | fit only s | model JSON MB | held-out share of "
        "oracle |\n|---|---|---|---|---|---|\n";
  for (const auto& t : trains) {
    std::snprintf(line, sizeof line, "| %zu | %d | %.2f | %.2f | %.2f | %.3f |\n", t.records,
                  t.threads, t.seconds, t.fit_seconds, static_cast<double>(t.json_bytes) / 1e6,
                  t.share);
    md << line;
  }
  md << "\nXGBoost threads 2 uses both cores of a machine other jobs share: OpenMP's spinning workers "
        "then wait on each other, which is why the learner trains with one thread by default "
        "(FitOptions::threads). Repeated runs of one shape and backend are fitted as one row (their "
        "median), so 100k records here fit about 51k rows.\n";
  std::cout << md.str();
  if (!quick || !out_arg.empty()) {
    std::ofstream out(out_file);
    out << md.str();
    std::cout << "\nwritten to " << out_file.string() << "\n";
  }
  return 0;
}

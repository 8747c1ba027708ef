// pfa-demo: pfa's main job in one run. A mixed attention workload goes through the engine twice:
// first routed by the plugins' own estimates (the cold start, with bounded exploration measuring
// the alternatives), then — after a model is trained from the executions the store recorded — by
// the learned router. It prints, call by call, which backend served each shape and how fast.
#include "common/problem_tensors.h"

#include <pfa/engine.h>
#include <pfa/learner/learned_router.h>
#include <pfa/learner/model_store.h>
#include <pfa/store/store.h>
#include <pfa/store/store_observer.h>

#include <fmt/format.h>

#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {

const char* const kWorkload[] = {
    "batch=1,heads_q=8,heads_kv=8,seqlen_q=1,seqlen_k=2048,head_dim=128,dtype=fp32,causal=1",
    "batch=4,heads_q=8,heads_kv=2,seqlen_q=128,seqlen_k=128,head_dim=64,dtype=bf16,causal=0",
    "batch=1,heads_q=8,heads_kv=8,seqlen_q=256,seqlen_k=256,head_dim=64,dtype=fp32,causal=1",
    "batch=1,heads_q=8,heads_kv=8,seqlen_q=1024,seqlen_k=1024,head_dim=64,dtype=fp32,causal=1",
    "batch=1,heads_q=8,heads_kv=8,seqlen_q=1024,seqlen_k=1024,head_dim=128,dtype=bf16,causal=0",
    "batch=2,heads_q=16,heads_kv=4,seqlen_q=512,seqlen_k=512,head_dim=96,dtype=fp16,causal=1",
    "batch=1,heads_q=4,heads_kv=4,seqlen_q=2048,seqlen_k=2048,head_dim=64,dtype=bf16,causal=1",
};

struct Options {
  std::string store;
  int rounds = 4;
};

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--store" && i + 1 < argc) {
      o.store = argv[++i];
    } else if (arg == "--rounds" && i + 1 < argc) {
      o.rounds = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--help" || arg == "-h") {
      fmt::print("usage: pfa-demo [--store FILE] [--rounds N]\n"
                 "Runs a mixed attention workload through pfa, records every execution in the\n"
                 "store (default: $XDG_STATE_HOME/pfa/pfa.db), trains the router from it and runs\n"
                 "the workload again.\n");
      std::exit(0);
    } else {
      throw pfa::Error(pfa::ErrorCode::invalid_argument,
                       fmt::format("unknown argument '{}' (try --help)", arg));
    }
  }
  return o;
}

// Runs the workload `rounds` times; prints one line per shape with the backends that served it.
void run_workload(pfa::Engine& engine, int rounds, std::mt19937_64& rng) {
  fmt::print("{:<90} {:>10} {:>9}  {}\n", "shape", "median ms", "GFLOP/s", "served by");
  for (const char* text : kWorkload) {
    const pfa::Problem problem = pfa::parse_problem(text);
    pfa::cli::ProblemTensors tensors(problem, rng);
    const pfa::AttentionOptions options = tensors.options();
    std::vector<double> latencies;
    std::map<std::string, int> served;
    int explored = 0;
    for (int r = 0; r < rounds; ++r) {
      const pfa::Report report = engine.attention(tensors.q.dl(), tensors.k.dl(), tensors.v.dl(),
                                                  tensors.out.dl(), options);
      latencies.push_back(report.latency_s);
      served[fmt::format("{} [{}]", report.backend, report.detail.data())]++;
      explored += report.explored;
    }
    std::sort(latencies.begin(), latencies.end());
    const double median = latencies[latencies.size() / 2];
    std::string who;
    for (const auto& [name, count] : served) {
      who += fmt::format("{}{} x{}", who.empty() ? "" : ", ", name, count);
    }
    if (explored) who += fmt::format("  ({} exploring)", explored);
    fmt::print("{:<90} {:>10.3f} {:>9.1f}  {}\n", text, median * 1e3,
               pfa::attention_flops(problem) / median * 1e-9, who);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse_args(argc, argv);
    const auto store_path = o.store.empty() ? pfa::store::Store::default_path()
                                            : std::filesystem::path(o.store);
    auto recorder = std::make_shared<pfa::store::StoreObserver>(store_path);
    std::shared_ptr<pfa::learner::LearnedRouter> router;
    pfa::EngineOptions engine_options;
    engine_options.observer = recorder;
    engine_options.make_router = [&router](const pfa::PluginList& plugins) {
      router = std::make_shared<pfa::learner::LearnedRouter>(plugins);
      return router;
    };
    pfa::Engine engine(engine_options);
    fmt::print("pfa demo\nstore: {}\nplugins:\n", store_path.string());
    for (const auto& p : engine.plugins()) {
      fmt::print("  {:<13} {:<7} {:<9} {}{}\n", p->name(), p->version(), p->device_types_text(),
                 p->description(), p->simulated() ? " (simulated: what-if routing only)" : "");
    }
    for (const auto& e : engine.load_errors()) fmt::print("  not loaded: {}\n", e.message);
    if (engine.plugins().empty()) {
      fmt::print(stderr, "pfa-demo: no backend plugins found; build them or set PFA_PLUGIN_PATH\n");
      return 1;
    }

    pfa::store::Store store(store_path);
    std::shared_ptr<const pfa::learner::CostModel> model;
    try {
      model = pfa::learner::load_active_model(store, pfa::Objective::latency);
    } catch (const pfa::Error& e) {
      fmt::print("\nthe store's active model cannot be read ({}); routing by estimates\n", e.what());
    }
    if (model) {
      router->set_model(model);
      fmt::print("\nrouting with the store's active model ({} runs)\n", model->trained_rows());
    } else {
      fmt::print("\nno model yet: routing by the plugins' estimates, exploring alternatives\n");
    }
    std::mt19937_64 rng(std::random_device{}());
    fmt::print("\n== round 1: {} calls per shape\n", o.rounds);
    run_workload(engine, o.rounds, rng);

    recorder->writer().flush();
    fmt::print("\nrecorded {} executions ({} dropped); training the router from {} records...\n",
               recorder->writer().written(), recorder->writer().dropped(), store.count());
    const auto trained = pfa::learner::train_from_store(store);
    const auto& m = trained.trained.metrics;
    fmt::print("model {} trained on {} runs in {:.2f} s; held-out share of oracle {:.3f} over {} "
               "problems; {}\n", trained.model_id, m.train_rows, m.seconds,
               m.holdout.geomean_share_of_oracle, m.holdout.groups,
               trained.activated ? "active now" : "kept the previous model (it routes better)");
    if (auto model = pfa::learner::load_active_model(store, pfa::Objective::latency)) {
      router->set_model(model);
    }

    fmt::print("\n== round 2, learned routing: {} calls per shape\n", o.rounds);
    run_workload(engine, o.rounds, rng);
    recorder->writer().flush();
    const auto stats = router->stats();
    fmt::print("\nrouter: {} calls, {} decisions computed, {} explored; store now holds {} "
               "records\nnext: pfa-tune --store {} stats | route --shape ... | evaluate ...\n",
               stats.calls, stats.misses, stats.explored, store.count(), store_path.string());
    return 0;
  } catch (const pfa::Error& e) {
    fmt::print(stderr, "pfa-demo: {}\n", e.what());
    return e.code() == pfa::ErrorCode::invalid_argument ? 2 : 1;
  }
}

// The learning loop from an application: record every execution into a store, train a cost model
// from the records (pfa::learner), and route the next calls by it.
//
//   learned_app STORE_FILE
//
// 1. An engine with a StoreObserver runs a few shapes on every exact, real backend that serves
//    them (forced by name, so that the store holds a comparison for each shape).
// 2. A LearnedRouter and a BackgroundLearner over that store: one step() trains a model, compares
//    it on held-out shapes and, as the store has no model yet, activates it.
// 3. A second engine routed by self_learning_router() loads the active model and picks a backend
//    for each shape; the Report says which.
#include <pfa/engine.h>
#include <pfa/error.h>
#include <pfa/learner/background_learner.h>
#include <pfa/learner/self_learning_router.h>
#include <pfa/store/store_observer.h>

#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

// A dense float32 BSHD tensor [batch, seq, heads, head_dim] with random values.
struct Tensor {
  std::vector<float> data;
  std::vector<int64_t> shape;
  DLTensor dl{};

  Tensor(std::vector<int64_t> dims, std::mt19937& rng) : shape(std::move(dims)) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    data.resize(static_cast<size_t>(n));
    for (float& x : data) x = uniform(rng);
    dl.data = data.data();
    dl.device = {kDLCPU, 0};
    dl.ndim = static_cast<int32_t>(shape.size());
    dl.dtype = {kDLFloat, 32, 1};
    dl.shape = shape.data();
  }
};

struct Shape {
  int64_t seqlen, head_dim;
  bool causal;
};

// Runs one call of `shape`; an empty backend lets the engine's router choose.
pfa::Report run(pfa::Engine& engine, const Shape& shape, const std::string& backend,
                std::mt19937& rng) {
  const int64_t batch = 1, heads = 4;
  Tensor q({batch, shape.seqlen, heads, shape.head_dim}, rng);
  Tensor k({batch, shape.seqlen, heads, shape.head_dim}, rng);
  Tensor v({batch, shape.seqlen, heads, shape.head_dim}, rng);
  Tensor out({batch, shape.seqlen, heads, shape.head_dim}, rng);
  pfa::AttentionOptions options;
  options.causal = shape.causal;
  options.backend = backend;
  return engine.attention(q.dl, k.dl, v.dl, out.dl, options);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: learned_app STORE_FILE\n");
    return 2;
  }
  const std::filesystem::path store_path = argv[1];
  const std::vector<Shape> shapes = {{32, 32, false}, {64, 32, true},   {96, 64, false},
                                     {128, 64, true}, {160, 32, false}, {192, 64, false},
                                     {224, 32, true}, {256, 64, true}};
  std::mt19937 rng(std::random_device{}());
  try {
    // 1. Record: every exact, real backend on every shape, three times.
    {
      pfa::EngineOptions options;
      auto observer = std::make_shared<pfa::store::StoreObserver>(store_path);
      options.observer = observer;
      pfa::Engine engine(std::move(options));
      int runs = 0;
      for (const auto& plugin : engine.plugins()) {
        if (plugin->approximate() || plugin->simulated()) continue;
        for (const Shape& shape : shapes) {
          for (int repeat = 0; repeat < 3; ++repeat) {
            try {
              run(engine, shape, plugin->name(), rng);
              ++runs;
            } catch (const pfa::Error&) {
              break;  // this backend does not serve the shape (a CUDA one on this CPU, say)
            }
          }
        }
      }
      observer->writer().flush();
      std::printf("recorded %d runs in %s\n", runs, store_path.c_str());
    }

    // 2. Train: one step of the learner that would otherwise run in the background.
    {
      pfa::Engine engine;
      pfa::learner::LearnedRouter router(engine.plugins());
      pfa::learner::LearnerOptions learner_options;
      learner_options.min_records = 10;
      learner_options.min_new_records = 1;
      pfa::learner::BackgroundLearner learner(store_path, router, learner_options);
      bool swapped = false;
      for (const auto& step : learner.step()) {
        std::printf("train %s: trained=%s activated=%s train_rows=%zu holdout_rows=%zu (%s)\n",
                    pfa::objective_name(step.objective), step.trained ? "yes" : "no",
                    step.swapped ? "yes" : "no", step.metrics.train_rows,
                    step.metrics.holdout_rows, step.note.c_str());
        swapped = swapped || step.swapped;
      }
      if (!swapped) {
        std::fprintf(stderr, "learned_app: no model was activated\n");
        return 1;
      }
    }

    // 3. Route: a new engine loads the active model from the store.
    pfa::EngineOptions options;
    options.make_router =
        pfa::learner::self_learning_router({.store_path = store_path, .learn_in_background = false});
    pfa::Engine engine(std::move(options));
    std::printf("router: %.*s\n", static_cast<int>(engine.router().name().size()),
                engine.router().name().data());
    for (const Shape& shape : shapes) {
      const pfa::Report report = run(engine, shape, "", rng);
      std::printf("seqlen=%-4lld head_dim=%-3lld %-7s -> %.*s%s\n",
                  static_cast<long long>(shape.seqlen), static_cast<long long>(shape.head_dim),
                  shape.causal ? "causal" : "", static_cast<int>(report.backend.size()),
                  report.backend.data(), report.explored ? " (explored)" : "");
    }
    return 0;
  } catch (const pfa::Error& e) {
    std::fprintf(stderr, "learned_app: %s (%s)\n", e.what(), pfa::error_code_name(e.code()));
    return 1;
  }
}

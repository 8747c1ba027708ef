// BackgroundLearner: a thread that keeps a LearnedRouter's models current from the execution store
// while the application runs.
//
// Every poll it counts the successful runs newer than those the current model was trained on. When
// they reach min_new_fraction (20%, Ansor's rule) of that training set, and at least
// min_new_records, it retrains from scratch on every record (XGBoost has no incremental training),
// compares the new model with the current one on the held-out problems (training.h), and only when
// the new one routes at least as well saves it to the store as the active model and swaps it into
// the router. Before any model exists it waits for min_records successful runs. Errors (a busy
// store, too few runs) are kept for last_error() and retried next poll; they never reach the
// application. A model another process (or `pfa-tune train`) activated in the same store is taken
// over at the next poll instead of being retrained here.
#pragma once

#include <pfa/learner/learned_router.h>
#include <pfa/learner/model_store.h>
#include <pfa/learner/training.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pfa::learner {

struct LearnerOptions {
  TrainOptions train;  // train.fit.objective is set per objective below
  std::vector<Objective> objectives{Objective::latency};
  int64_t min_records = 100;
  double min_new_fraction = 0.2;
  int64_t min_new_records = 50;
  double tolerance = 0.0;  // a new model may route this much worse (share of oracle) and still win
  std::chrono::milliseconds poll_interval{5000};
  // Called once for each active model in the store that cannot be read (damaged or truncated):
  // routing keeps the model it had, else the plugins' estimates, until a readable one is activated.
  // Default: one line on stderr.
  std::function<void(const std::string& message)> on_model_error;
  // Trains a candidate; default learner::train. Tests replace it to offer a worse model.
  std::function<TrainResult(std::span<const store::ExecutionRecord>, const TrainOptions&)> trainer;
};

// What one check did for one objective.
struct LearnerStep {
  Objective objective = Objective::latency;
  bool trained = false;
  bool swapped = false;
  int64_t new_records = 0;
  ModelMetrics metrics;        // when trained
  ModelComparison comparison;  // when trained
  int64_t model_id = 0;        // saved model, when swapped
  std::string note;            // why it did or did not train
};

class BackgroundLearner {
 public:
  // Opens its own connection to the store at `store_path` and loads the store's active models into
  // `router` (which must outlive this object). Throws pfa::Error(store) when the store cannot be
  // opened. Does not start the thread.
  BackgroundLearner(std::filesystem::path store_path, LearnedRouter& router,
                    LearnerOptions options = {});
  ~BackgroundLearner();  // stops the thread
  BackgroundLearner(const BackgroundLearner&) = delete;
  BackgroundLearner& operator=(const BackgroundLearner&) = delete;

  void start();
  void stop();

  // One check of every objective, on the caller's thread. Throws what the store or XGBoost throw.
  std::vector<LearnerStep> step();

  uint64_t swaps() const;
  std::string last_error() const;

 private:
  struct Baseline {
    int64_t trained_on = 0;     // successful runs the current model saw
    int64_t max_record_id = 0;  // newest record it saw
    int64_t model_id = 0;       // its id in the store's models table
    std::shared_ptr<const CostModel> model;
  };
  // Takes the store's active model when another process (or `pfa-tune train`) activated a newer
  // one; true when it did.
  bool adopt_active(Baseline& b, Objective objective, LearnerStep& step);
  LearnerStep step_one(size_t index);
  void run();

  store::Store store_;
  LearnedRouter& router_;
  LearnerOptions options_;
  std::vector<Baseline> baselines_;  // per objective

  mutable std::mutex mutex_;  // guards the fields below and serialises step()
  std::mutex step_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  uint64_t swaps_ = 0;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace pfa::learner

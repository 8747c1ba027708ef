// pfa-tune against a damaged routing model and against a store it may not write: a clear message,
// a fallback or a refusal, and the store file left exactly as it was.
#include "../cli/tune_support.h"
#include "read_only_support.h"

#include <pfa/learner/model_store.h>
#include <pfa/store/store.h>

#include <nlohmann/json.hpp>

#include <fcntl.h>

#include <algorithm>

namespace pfa::tune::testing {
namespace {

constexpr const char* kShape = "batch=1,heads_q=8,seqlen_q=512,head_dim=64,dtype=fp32,causal=1";

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A store of realistic records whose active latency model is the trained one cut short.
std::filesystem::path store_with_truncated_model(const TempDir& dir, std::mt19937_64& rng) {
  const auto path = dir / "runs.db";
  store::Store s(path);
  s.insert(realistic_records(rng()));
  learner::StoreTrainOptions options;
  options.train.holdout_fraction = 0.0;
  options.train.fit.min_rows_per_backend = 2;
  const auto trained = learner::train_from_store(s, options);
  EXPECT_TRUE(trained.activated);
  const std::string json = trained.trained.model->to_json();
  store::ModelRecord m;
  m.kind = "latency";
  m.model_json = json.substr(0, std::uniform_int_distribution<size_t>(1, json.size() - 1)(rng));
  m.metrics_json = "{}";
  s.save_model(m, /*activate=*/true);
  return path;
}

TEST(DamagedModelTune, RouteAndExplainFallBackToEstimatesAndSaySoOnce) {
  TempDir dir;
  std::mt19937_64 rng(std::random_device{}());
  const auto path = store_with_truncated_model(dir, rng);
  const std::string before = read_file(path);
  for (const char* command : {"route", "explain"}) {
    const auto r = run_tune({"--store", path.string(), command, "--shape", kShape}, dir);
    EXPECT_EQ(r.status, 0) << command << ": " << r.err;
    EXPECT_EQ(count_of(r.err, "cannot be read"), 1u) << command << ": said once\n" << r.err;
    EXPECT_NE(r.err.find("warning"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("not valid JSON"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("plugins' estimates"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("pfa-tune train"), std::string::npos) << r.err;
    EXPECT_NE(r.out.find("plugin estimate"), std::string::npos) << command << ":\n" << r.out;
    EXPECT_EQ(r.out.find("model prediction"), std::string::npos) << command << ":\n" << r.out;
  }
  // --json: stdout stays one JSON document, the warning goes to stderr.
  const auto r = run_tune({"--store", path.string(), "--json", "route", "--shape", kShape}, dir);
  EXPECT_EQ(r.status, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_FALSE(doc.at("decision").is_null());
  EXPECT_EQ(count_of(r.err, "cannot be read"), 1u) << r.err;
  EXPECT_EQ(read_file(path), before) << "route and explain must not change the store";
}

// Training over a damaged (or older pfa's) active model replaces it instead of failing: this is
// how a store carried over from an older version gets its routing back.
TEST(DamagedModelTune, TrainReplacesAModelThatCannotBeRead) {
  TempDir dir;
  std::mt19937_64 rng(std::random_device{}());
  const auto path = store_with_truncated_model(dir, rng);
  // The fixture's records come from devices this machine lacks: without --allow-foreign training
  // refuses and says why, and the store keeps its model; with it, the damaged model is replaced.
  const std::string before = read_file(path);
  const auto refused = run_tune({"--store", path.string(), "train"}, dir);
  EXPECT_EQ(refused.status, 1) << refused.err;
  EXPECT_NE(refused.err.find("--allow-foreign"), std::string::npos) << refused.err;
  EXPECT_EQ(read_file(path), before);
  const auto r = run_tune({"--store", path.string(), "--json", "train", "--allow-foreign"}, dir);
  ASSERT_EQ(r.status, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_TRUE(doc.at("active").get<bool>()) << r.out;
  const auto after = run_tune({"--store", path.string(), "route", "--shape", kShape}, dir);
  EXPECT_EQ(after.status, 0) << after.err;
  EXPECT_EQ(count_of(after.err, "cannot be read"), 0u) << after.err;
  EXPECT_NE(after.out.find("model prediction"), std::string::npos) << after.out;
}

// Runs pfa-tune without write access to the store (as uid nobody when this test runs as root).
RunResult run_tune_unprivileged(const std::vector<std::string>& args, const TempDir& out_dir) {
  const auto out_path = out_dir / "ro_stdout.txt";
  const auto err_path = out_dir / "ro_stderr.txt";
  RunResult r;
  const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (out < 0 || err < 0) return r;
  r.status = test::run_unprivileged([&]() -> int {
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<char*> argv;
    std::string tune = PFA_TUNE_PATH;
    argv.push_back(tune.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(PFA_TUNE_PATH, argv.data());
    return 127;
  });
  ::close(out);
  ::close(err);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

TEST(ReadOnlyStoreTune, WritingCommandsRefuseClearlyAndChangeNothing) {
  TempDir dir;
  ::chmod(dir.path().c_str(), 0755);  // mkdtemp's 0700 would keep the unprivileged user out
  TempDir out_dir;  // stays writable: the child's stdout and stderr go there
  ::chmod(out_dir.path().c_str(), 0777);
  std::mt19937_64 rng(std::random_device{}());
  const auto store_dir = dir / "ro";
  std::filesystem::create_directories(store_dir);
  const auto path = store_dir / "runs.db";
  {
    store::Store s(path);
    s.insert(realistic_records(rng()));
  }
  // A tuning file to import: the same kind of records, other measurements.
  {
    TempDir other;
    store::Store s(other / "other.db");
    s.insert(realistic_records(rng()));
    const auto r = run_tune({"--store", (other / "other.db").string(), "export",
                             (out_dir / "fleet.pfatune").string()}, other);
    ASSERT_EQ(r.status, 0) << r.err;
  }
  ::chmod((out_dir / "fleet.pfatune").c_str(), 0644);
  const std::string before = read_file(path);
  test::make_read_only(path);
  struct Restore {
    std::filesystem::path file;
    ~Restore() { test::make_writable(file); }
  } restore{path};
  if (!test::writes_are_refused(path)) {
    GTEST_SKIP() << "cannot make " << path << " unwritable here: not root (to drop to uid "
                 << test::kUnprivilegedId << ") and the mode bits do not stop this user";
  }
  const std::vector<std::vector<std::string>> commands = {
      {"pin", "--shape", kShape, "--backend", "cpu_flash"},
      {"unpin", "--shape", kShape},
      {"import", (out_dir / "fleet.pfatune").string()},
      {"train"},
      {"bench", "--grid", "batch=1;heads_q=2;seqlen_q=16;head_dim=16;dtype=fp32;causal=0",
       "--repeat", "1"},
  };
  for (const auto& command : commands) {
    std::vector<std::string> args = {"--store", path.string()};
    args.insert(args.end(), command.begin(), command.end());
    const auto r = run_tune_unprivileged(args, out_dir);
    const std::string what = "pfa-tune " + command.front();
    EXPECT_NE(r.status, 0) << what << " succeeded on a read-only store:\n" << r.out;
    EXPECT_NE(r.status, 99) << what << ": could not drop root";
    EXPECT_NE(r.status, 127) << what << ": could not run " << PFA_TUNE_PATH;
    EXPECT_NE(r.err.find(path.string()), std::string::npos) << what << ": names the file\n" << r.err;
    EXPECT_NE(r.err.find("read-only"), std::string::npos) << what << ": says why\n" << r.err;
    EXPECT_LE(std::count(r.err.begin(), r.err.end(), '\n'), 2) << what << ": one line\n" << r.err;
  }
  test::make_writable(path);
  EXPECT_EQ(read_file(path), before) << "a refused command changed the store";
  EXPECT_FALSE(std::filesystem::exists(path.string() + "-wal"));
}

}  // namespace
}  // namespace pfa::tune::testing

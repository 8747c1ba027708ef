// pfa-tune as an operator runs it: a subprocess against real store files.
#include "tune_support.h"

#include "tuning_file.h"

#include <pfa/learner/model_store.h>
#include <pfa/store/schema.h>

#include <nlohmann/json.hpp>

#include <sqlite3.h>

#include <algorithm>

namespace pfa::tune::testing {
namespace {

constexpr const char* kShape = "batch=1,heads_q=8,seqlen_q=512,head_dim=64,dtype=fp32,causal=1";

// A store of realistic records with a trained latency model.
std::filesystem::path make_trained_store(const TempDir& dir) {
  const auto path = dir / "runs.db";
  store::Store s(path);
  const auto records = realistic_records(std::random_device{}());
  s.insert(records);
  learner::StoreTrainOptions options;
  options.train.holdout_fraction = 0.0;
  options.train.fit.min_rows_per_backend = 2;
  learner::train_from_store(s, options);
  return path;
}

void set_user_version(const std::filesystem::path& path, int version) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const std::string sql = "PRAGMA user_version = " + std::to_string(version);
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
}

// One line on stderr, no stdout noise, the given exit status.
void expect_refused(const RunResult& r, int status) {
  EXPECT_EQ(r.status, status) << r.err;
  EXPECT_FALSE(r.err.empty());
  EXPECT_LE(std::count(r.err.begin(), r.err.end(), '\n'), 2) << r.err;
}

TEST(PfaTuneExplain, ShowsFeaturesCandidatesImportanceAndNearestRuns) {
  TempDir dir;
  const auto path = make_trained_store(dir);
  const auto r = run_tune({"--store", path.string(), "--json", "explain", "--shape", kShape}, dir);
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j["model_id"].is_null());
  ASSERT_GE(j["features"].size(), 14u);
  EXPECT_EQ(j["features"][0]["name"], "log2_batch");
  EXPECT_FALSE(j["feature_importance"].empty());
  for (const auto& f : j["feature_importance"]) EXPECT_GT(f["gain"].get<double>(), 0.0);
  ASSERT_FALSE(j["nearest_records"].empty());
  // The exact shape is in the store, so the nearest runs are at distance 0 and measured.
  EXPECT_EQ(j["nearest_records"][0]["distance"].get<double>(), 0.0);
  bool measured = false;
  for (const auto& c : j["candidates"]) {
    if (c["backend"] == "cpu_flash" && c["eligible"].get<bool>()) {
      EXPECT_GT(c["measured_median"].get<double>(), 0.0);
      EXPECT_EQ(c["measured_runs"].get<int>(), 3);
      measured = true;
    }
    if (!c["eligible"].get<bool>()) EXPECT_FALSE(c["reason"].get<std::string>().empty());
  }
  EXPECT_TRUE(measured) << r.out;
}

TEST(PfaTuneExplain, WorksWithoutAModel) {
  TempDir dir;
  const auto path = dir / "empty.db";
  { store::Store s(path); }
  const auto r = run_tune({"--store", path.string(), "explain", "--shape", kShape}, dir);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("no active latency model"), std::string::npos) << r.out;
}

TEST(PfaTuneDoctor, HealthyStoreHasNoStoreProblems) {
  TempDir dir;
  const auto path = make_trained_store(dir);
  const auto r = run_tune({"--store", path.string(), "--json", "doctor"}, dir);
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["store"]["integrity"], "ok");
  EXPECT_EQ(j["store"]["schema_version"], store::kSchemaVersion);
  EXPECT_GT(j["store"]["records"].get<int64_t>(), 0);
  ASSERT_EQ(j["store"]["active_models"].size(), 1u);
  EXPECT_FALSE(j["cpu"]["model"].get<std::string>().empty());
  // Only plugin problems may remain (a build may carry a plugin that cannot load here).
  for (const auto& p : j["problems"]) {
    EXPECT_NE(p["problem"].get<std::string>().find("plugin"), std::string::npos) << p;
  }
  EXPECT_EQ(r.status, j["problems"].empty() ? 0 : 3);
}

TEST(PfaTuneDoctor, FindsProblemsWithAFixAndChangesNothing) {
  TempDir dir;
  const auto newer = make_trained_store(dir);
  set_user_version(newer, store::kSchemaVersion + 1);
  const auto not_pfa = dir / "other.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(not_pfa.c_str(), &db), SQLITE_OK);
    sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1);", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  const auto text = dir / "notes.txt";
  std::ofstream(text) << "not a database at all, just some words for the header check\n";
  const auto missing = dir / "missing.db";
  for (const auto& path : {newer, not_pfa, text, missing}) {
    const std::string before = read_file(path);
    const auto r = run_tune({"--store", path.string(), "--json", "doctor"}, dir);
    EXPECT_EQ(r.status, 3) << path << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_FALSE(j["problems"].empty()) << path;
    for (const auto& p : j["problems"]) EXPECT_FALSE(p["fix"].get<std::string>().empty());
    EXPECT_EQ(read_file(path), before) << path;
  }
  EXPECT_FALSE(std::filesystem::exists(missing));
}

// Every command refuses bad input with one line and status 2, and leaves the store as it was.
TEST(PfaTuneBadInput, RefusedWithOneLineAndNothingChanged) {
  TempDir dir;
  const auto path = make_trained_store(dir);
  const std::string store = path.string();
  const std::string before = read_file(path);
  const int64_t records = store::Store(path).count();
  const std::vector<std::vector<std::string>> cases = {
      {"--store", store, "route", "--shape", "batch=1,heads_q=8,seqlen_q=64,head_dim=64,colour=red"},
      {"--store", store, "route", "--shape", "batch=-1,heads_q=8,seqlen_q=64,head_dim=64"},
      {"--store", store, "explain", "--shape", "batch=1,heads_q=8,seqlen_q=64,head_dim=64,colour=red"},
      {"--store", store, "explain", "--shape", "batch=1,heads_q=8,seqlen_q=-64,head_dim=64"},
      {"--store", store, "explain", "--shape", kShape, "--objective", "speed"},
      {"--store", store, "bench", "--grid", "batch=1;heads_q=8;seqlen_q=-128;head_dim=64"},
      {"--store", store, "bench", "--shapes", (dir / "missing.csv").string()},
      {"--store", store, "evaluate", "--shapes", (dir / "missing.csv").string()},
      {"--store", store, "train", "--objective", "speed"},
      {"--store", store, "no-such-command"},
  };
  for (const auto& args : cases) {
    const auto r = run_tune(args, dir);
    expect_refused(r, 2);
    EXPECT_EQ(store::Store(path).count(), records);
  }
  EXPECT_EQ(read_file(path), before);
}

TEST(PfaTuneBadInput, MissingStoreIsNotCreatedByReadingCommands) {
  TempDir dir;
  const auto missing = dir / "missing.db";
  const auto r = run_tune({"--store", missing.string(), "explain", "--shape", kShape}, dir);
  expect_refused(r, 2);
  EXPECT_FALSE(std::filesystem::exists(missing));
}

TEST(PfaTuneBadInput, ForeignOrNewerStoreRefusedUnchanged) {
  TempDir dir;
  const auto newer = make_trained_store(dir);
  const auto file = dir / "runs.pfatune";
  ASSERT_EQ(run_tune({"--store", newer.string(), "export", file.string()}, dir).status, 0);
  set_user_version(newer, store::kSchemaVersion + 1);
  const auto text = dir / "notes.txt";
  std::ofstream(text) << "not a database at all, just some words for the header check\n";
  for (const auto& path : {newer, text}) {
    const std::string before = read_file(path);
    const std::string s = path.string();
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"--store", s, "explain", "--shape", kShape},
          std::vector<std::string>{"--store", s, "route", "--shape", kShape},
          std::vector<std::string>{"--store", s, "stats"},
          std::vector<std::string>{"--store", s, "train"},
          std::vector<std::string>{"--store", s, "export", (dir / "out.pfatune").string()},
          std::vector<std::string>{"--store", s, "import", file.string()},
          std::vector<std::string>{"--store", s, "pin", "--shape", kShape, "--backend", "cpu_flash"},
          std::vector<std::string>{"--store", s, "unpin", "--shape", kShape},
          std::vector<std::string>{"--store", s, "pins"},
          std::vector<std::string>{"--store", s, "report", "--out", (dir / "r").string()}}) {
      const auto r = run_tune(args, dir);
      expect_refused(r, 2);
      EXPECT_EQ(read_file(path), before) << path << args[2];
    }
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "out.pfatune"));
  EXPECT_FALSE(std::filesystem::exists(dir / "r"));
}

}  // namespace
}  // namespace pfa::tune::testing

namespace pfa::tune::testing {
namespace {

std::vector<std::string> lines_of(const std::filesystem::path& path) {
  std::istringstream in(read_file(path));
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

TEST(PfaTuneTransfer, ExportImportRoundTripAndImportTwiceAddsNothing) {
  TempDir dir;
  const auto from = make_trained_store(dir);
  const auto file = dir / "runs.pfatune";
  ASSERT_EQ(run_tune({"--store", from.string(), "export", file.string()}, dir).status, 0);
  const auto lines = lines_of(file);
  const auto header = nlohmann::json::parse(lines.at(0));
  EXPECT_EQ(header["format"], "pfa-tuning-db");
  EXPECT_EQ(header["version"], 1);
  const auto original = store::Store(from).records();
  EXPECT_EQ(header["records"].get<size_t>(), original.size());
  ASSERT_EQ(header["fingerprints"].size(), 1u);
  EXPECT_EQ(header["fingerprints"][0]["device_name"], "Test CPU");

  const auto to = dir / "other.db";
  auto r = run_tune({"--store", to.string(), "--json", "import", file.string()}, dir);
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["added"].get<size_t>(), original.size());
  EXPECT_EQ(j["foreign"].get<size_t>(), original.size());  // "Test CPU" is not this machine
  const auto imported = store::Store(to).records();
  ASSERT_EQ(imported.size(), original.size());
  for (size_t i = 0; i < original.size(); ++i) {
    EXPECT_EQ(content_hash(imported[i]), content_hash(original[i])) << i;
    EXPECT_EQ(imported[i].source, store::RecordSource::imported);
  }
  const std::string before = read_file(to);
  r = run_tune({"--store", to.string(), "--json", "import", file.string()}, dir);
  ASSERT_EQ(r.status, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["added"], 0);
  EXPECT_EQ(j["duplicates"].get<size_t>(), original.size());
  EXPECT_EQ(store::Store(to).count(), static_cast<int64_t>(original.size()));

  // Another device's runs do not steer training here unless asked.
  r = run_tune({"--store", to.string(), "train"}, dir);
  EXPECT_NE(r.status, 0);  // nothing local to learn from
  EXPECT_NE(r.err.find("pfa-tune bench"), std::string::npos) << r.err;
  r = run_tune({"--store", to.string(), "--json", "train", "--allow-foreign", "--holdout", "0"}, dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["foreign"], 0);
}

TEST(PfaTuneTransfer, MergeIsIdempotent) {
  TempDir dir;
  const auto a = make_trained_store(dir);
  const auto fa = dir / "a.pfatune", fb = dir / "b.pfatune", ab = dir / "ab.pfatune",
             abab = dir / "abab.pfatune";
  ASSERT_EQ(run_tune({"--store", a.string(), "export", fa.string()}, dir).status, 0);
  {
    store::Store b(dir / "b.db");
    b.insert(realistic_records(7));
  }
  ASSERT_EQ(run_tune({"--store", (dir / "b.db").string(), "export", fb.string()}, dir).status, 0);
  ASSERT_EQ(run_tune({"merge", fa.string(), fb.string(), "--out", ab.string()}, dir).status, 0);
  ASSERT_EQ(run_tune({"merge", ab.string(), fa.string(), fb.string(), ab.string(), "--out",
                      abab.string()}, dir).status, 0);
  EXPECT_EQ(read_file(ab), read_file(abab));
  const auto n = lines_of(ab).size() - 1;
  EXPECT_EQ(n, lines_of(fa).size() - 1 + lines_of(fb).size() - 1);
}

TEST(PfaTuneTransfer, MalformedOrTruncatedFileRefusedStoreUntouched) {
  TempDir dir;
  const auto path = make_trained_store(dir);
  const auto file = dir / "runs.pfatune";
  ASSERT_EQ(run_tune({"--store", path.string(), "export", file.string()}, dir).status, 0);
  const std::string good = read_file(file);
  const auto target = dir / "target.db";
  { store::Store s(target); s.insert(realistic_records(11)); }
  const std::string before = read_file(target);

  std::vector<std::pair<std::string, std::string>> bad = {
      {"truncated", good.substr(0, good.size() * 2 / 3)},
      {"cut at a line end", good.substr(0, good.rfind('\n', good.size() - 2) + 1)},
      {"not ours", "batch,heads_q\n1,2\n"},
      {"empty", ""},
  };
  std::string changed = good;
  const size_t digit = changed.find("\"latency_s\":") + 12;
  changed[digit] = changed[digit] == '9' ? '8' : '9';
  bad.emplace_back("changed value", changed);
  std::string negative = good;
  const auto at = negative.find("\"batch\":1");
  negative.replace(at, 9, "\"batch\":-1");
  bad.emplace_back("negative size", negative);
  std::string newer = good;
  newer.replace(newer.find("\"version\":1"), 11, "\"version\":9");
  bad.emplace_back("newer version", newer);
  for (const auto& [name, text] : bad) {
    const auto f = dir / "bad.pfatune";
    std::ofstream(f, std::ios::binary | std::ios::trunc) << text;
    const auto r = run_tune({"--store", target.string(), "import", f.string()}, dir);
    expect_refused(r, 2);
    EXPECT_NE(r.err.find("bad.pfatune"), std::string::npos) << name << ": " << r.err;
    EXPECT_EQ(read_file(target), before) << name;
    const auto m = run_tune({"merge", f.string(), "--out", (dir / "m.pfatune").string()}, dir);
    expect_refused(m, 2);
    EXPECT_FALSE(std::filesystem::exists(dir / "m.pfatune")) << name;
  }
  // A missing file into a missing store creates nothing.
  const auto r = run_tune({"--store", (dir / "new.db").string(), "import",
                           (dir / "missing.pfatune").string()}, dir);
  expect_refused(r, 2);
  EXPECT_FALSE(std::filesystem::exists(dir / "new.db"));
}

}  // namespace
}  // namespace pfa::tune::testing

namespace pfa::tune::testing {
namespace {

TEST(PfaTunePin, RouteAndExplainObeyThePinUntilUnpinned) {
  TempDir dir;
  const auto path = make_trained_store(dir);
  const std::string store = path.string();
  auto route = [&] {
    const auto r = run_tune({"--store", store, "--json", "route", "--shape", kShape}, dir);
    EXPECT_EQ(r.status, 0) << r.err;
    return nlohmann::json::parse(r.out)["decision"].get<std::string>();
  };
  const std::string before = route();
  const std::string other = before == "cpu_flash" ? "torch_sdpa" : "cpu_flash";
  auto r = run_tune({"--store", store, "pin", "--shape", kShape, "--backend", other}, dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(route(), other);
  r = run_tune({"--store", store, "--json", "explain", "--shape", kShape}, dir);
  ASSERT_EQ(r.status, 0) << r.err;
  const auto e = nlohmann::json::parse(r.out);
  EXPECT_EQ(e["pin"], other);
  EXPECT_EQ(e["decision"], other);
  EXPECT_NE(e["candidates"][0]["reason"].get<std::string>().find("pinned"), std::string::npos);
  r = run_tune({"--store", store, "--json", "pins"}, dir);
  EXPECT_EQ(nlohmann::json::parse(r.out)["pins"].size(), 1u);
  ASSERT_EQ(run_tune({"--store", store, "unpin", "--shape", kShape}, dir).status, 0);
  EXPECT_EQ(route(), before);
}

TEST(PfaTunePin, BadPinsAreRefusedAndChangeNothing) {
  TempDir dir;
  const auto path = make_trained_store(dir);
  const std::string store = path.string();
  const std::string before = read_file(path);
  const std::vector<std::vector<std::string>> cases = {
      {"--store", store, "pin", "--shape", kShape, "--backend", "no_such_backend"},
      {"--store", store, "pin", "--shape", "batch=1,heads_q=8,seqlen_q=0,head_dim=64", "--backend",
       "cpu_flash"},
      {"--store", store, "pin", "--shape", "batch=1,heads_q=8,seqlen_q=64,head_dim=64,size=3",
       "--backend", "cpu_flash"},
      {"--store", store, "unpin", "--shape", kShape},  // nothing pinned
      {"--store", store, "export"},                    // no file named
      {"--store", store, "export", (dir / "no-such-folder" / "x.pfatune").string()},
      {"--store", store, "merge", "--out", (dir / "m.pfatune").string()},  // no inputs
      {"--store", store, "doctor", "--frobnicate"},
  };
  for (const auto& args : cases) {
    const auto r = run_tune(args, dir);
    EXPECT_EQ(r.status, 2) << args[2] << ": " << r.err;
    EXPECT_FALSE(r.err.empty()) << args[2];
  }
  EXPECT_EQ(read_file(path), before);
  EXPECT_TRUE(store::Store(path).pins().empty());
}

// Files exported before split problems existed have no "ranks" and hash without it: they still
// import, as one-device runs; a split run keeps its rank count through a file.
TEST(TuningFile, OlderFilesImportAndSplitRunsKeepTheirRanks) {
  const auto old_file = std::filesystem::path(PFA_SOURCE_DIR) /
                        "tests/fuzz/corpus/tuning_file/seed_written_before_ranks";
  const auto old_records = read_tuning_file(old_file);
  ASSERT_FALSE(old_records.empty());
  for (const auto& r : old_records) EXPECT_EQ(ranks_of(r.problem), 1);

  TempDir dir;
  auto records = old_records;
  records.front().problem.ranks = 4;
  const auto file = dir / "split.pfatune";
  write_tuning_file(file, records);
  const auto back = read_tuning_file(file);
  ASSERT_EQ(back.size(), records.size());
  EXPECT_EQ(ranks_of(back.front().problem), 4);
  EXPECT_EQ(record_to_json(back.back()).count("ranks"), 0u);
}

}  // namespace
}  // namespace pfa::tune::testing

// Store: round trip of every field, migration, queries, models, paths and errors, and two
// processes writing one file at once.
#include "store_test_util.h"

#include <pfa/error.h>
#include <pfa/store/async_writer.h>
#include <pfa/store/schema.h>
#include <pfa/store/store.h>

#include <sqlite3.h>
#include <sys/wait.h>
#include <csignal>
#include <unistd.h>

#include <fstream>
#include <set>
#include <thread>

namespace pfa::store {
namespace {

using testing::TempDir;

// Runs SQL on a raw connection, outside the Store, as another program would.
void raw_exec(const std::filesystem::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  EXPECT_EQ(rc, SQLITE_OK) << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

int64_t raw_int(const std::filesystem::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  const int64_t v = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return v;
}

// Expects `body` to throw pfa::Error(store) whose message contains every one of `parts`.
template <class F>
void expect_store_error(F&& body, std::initializer_list<std::string> parts) {
  try {
    body();
    ADD_FAILURE() << "no pfa::Error was thrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::store) << e.what();
    for (const auto& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
        << "'" << part << "' not in: " << e.what();
  }
}

TEST(Store, CreatesSchemaAtCurrentVersionWithWal) {
  TempDir dir;
  const auto path = dir / "pfa.db";
  {
    Store store(path);
    EXPECT_EQ(store.schema_version(), kSchemaVersion);
    EXPECT_EQ(store.path(), path);
    EXPECT_EQ(store.count(), 0);
    EXPECT_EQ(store.max_id(), 0);
  }
  EXPECT_EQ(raw_int(path, "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(raw_int(path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
  // Reopening an existing store keeps it as it is.
  Store again(path);
  EXPECT_EQ(again.schema_version(), kSchemaVersion);
}

TEST(Store, RoundTripsEveryFieldOfRandomRecords) {
  const uint64_t seed = testing::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  TempDir dir;
  std::vector<ExecutionRecord> in;
  for (int i = 0; i < 300; ++i) in.push_back(testing::random_record(rng));
  in[0].latency_s = -0.0;  // edge values that a REAL column might normalise
  in[1].latency_s = 9007199254740993.0;
  in[2].energy_j = -1;

  std::vector<int64_t> ids(in.size());
  {
    Store store(dir / "pfa.db");
    store.insert(in, ids);
  }
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_EQ(ids[i], ids[i - 1] + 1);

  Store store(dir / "pfa.db");  // a fresh connection reads what the other one wrote
  const auto out = store.records();
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    SCOPED_TRACE("record " + std::to_string(i));
    EXPECT_EQ(out[i].id, ids[i]);
    EXPECT_EQ(out[i].problem.struct_size, sizeof(Problem));
    testing::expect_same_record(in[i], out[i]);
  }
  EXPECT_EQ(store.max_id(), ids.back());
}

TEST(Store, QueriesFilterByIdBackendAndOutcome) {
  TempDir dir;
  Store store(dir / "pfa.db");
  std::vector<ExecutionRecord> in;
  for (int i = 1; i <= 200; ++i) {
    in.push_back(testing::simple_record(0, i, i % 3 == 0 ? "torch_sdpa" : "cpu_flash"));
  }
  store.insert(in);
  const int64_t first = store.max_id() - 199;

  EXPECT_EQ(store.count(), 200);
  EXPECT_EQ(store.count({.backend = "torch_sdpa"}), 66);
  EXPECT_EQ(store.count({.ok_only = true}), 160);
  int expected = 0;
  for (const auto& r : in) expected += (text(r.backend) == "torch_sdpa" && r.ok) ? 1 : 0;
  EXPECT_EQ(store.count({.backend = "torch_sdpa", .ok_only = true}), expected);
  EXPECT_EQ(store.count({.backend = "nothing"}), 0);

  const auto since = store.records({.since_id = first + 99});
  ASSERT_EQ(since.size(), 100u);
  EXPECT_EQ(since.front().id, first + 100);
  for (size_t i = 1; i < since.size(); ++i) EXPECT_GT(since[i].id, since[i - 1].id);

  const auto limited = store.records({.since_id = first + 9, .ok_only = true, .limit = 7});
  ASSERT_EQ(limited.size(), 7u);
  for (const auto& r : limited) {
    EXPECT_TRUE(r.ok);
    EXPECT_GT(r.id, first + 9);
  }
  EXPECT_EQ(store.count({.limit = 7}), 7);

  for (const auto& r : store.records({.backend = "torch_sdpa"})) {
    EXPECT_EQ(text(r.backend), "torch_sdpa");
  }

  // Streaming visits exactly the rows records() returns.
  for (const RecordQuery& q : {RecordQuery{}, RecordQuery{.since_id = first + 50, .limit = 13},
                               RecordQuery{.backend = "cpu_flash", .ok_only = true}}) {
    const auto expected_rows = store.records(q);
    std::vector<int64_t> visited;
    store.for_each_record(q, [&](const ExecutionRecord& r) {
      visited.push_back(r.id);
      testing::expect_same_record(r, expected_rows[visited.size() - 1]);
    });
    ASSERT_EQ(visited.size(), expected_rows.size());
    for (size_t i = 0; i < visited.size(); ++i) EXPECT_EQ(visited[i], expected_rows[i].id);
  }
}

TEST(Store, MigratesAVersion1File) {
  TempDir dir;
  const auto path = dir / "old.db";
  // A file exactly as version 1 of pfa left it, with a few rows of its own.
  raw_exec(path, std::string(schema_v1_script()));
  raw_exec(path,
           "INSERT INTO executions (timestamp_us, batch, heads_q, heads_kv, seqlen_q, seqlen_k, "
           "head_dim, dtype, layout, causal, want_lse, softmax_scale, device_type, device_id, "
           "backend, backend_version, device_name, device_detail, device_class, latency_s, "
           "energy_j, energy_measured, rel_error, error_estimate, ok, failure, explored, simulated, "
           "source, pfa_version) VALUES "
           "(1700000000000001, 2, 16, 4, 512, 1024, 128, 2, 0, 1, 0, 0.088, 2, 0, 'cuda_fa3', "
           "'0.9', 'NVIDIA H100', 'sm_90', 'cuda:sm90', 0.00123, 0.5, 1, -1, 0, 1, '', 0, 0, 0, "
           "'0.0.9'),"
           "(1700000000000002, 1, 8, 8, 64, 64, 64, 0, 0, 0, 0, 0.125, 1, 0, 'spectral', '0.1', "
           "'cpu', '', 'cpu', 0.0002, -1, 0, 0.03, 0.05, 0, 'device_error: boom', 1, 0, 1, "
           "'0.0.9'),"
           "(1700000000000003, 1, 8, 8, 64, 64, 64, 0, 0, 0, 0, 0.125, 1, 0, 'photonic_sim', "
           "'0.1', 'sim', '', 'cpu', 0.00001, 0.001, 0, -1, 0.01, 1, '', 0, 1, 0, '0.0.9');"
           "INSERT INTO models (created_us, kind, model_json, trained_on_records, active) VALUES "
           "(10, 'latency', '{\"a\":1}', 100, 1), (20, 'latency', '{\"a\":2}', 200, 1),"
           "(30, 'energy', '{\"e\":1}', 50, 0);");
  ASSERT_EQ(raw_int(path, "PRAGMA user_version"), 1);

  Store store(path);
  EXPECT_EQ(store.schema_version(), kSchemaVersion);
  EXPECT_EQ(raw_int(path, "PRAGMA user_version"), kSchemaVersion);

  const auto rows = store.records();
  ASSERT_EQ(rows.size(), 3u);
  const ExecutionRecord& fa3 = rows[0];
  EXPECT_EQ(text(fa3.backend), "cuda_fa3");
  EXPECT_EQ(fa3.problem.heads_kv, 4);
  EXPECT_EQ(fa3.problem.seqlen_k, 1024);
  EXPECT_EQ(fa3.problem.dtype, PFA_DTYPE_BF16);
  EXPECT_EQ(fa3.problem.causal, 1);
  EXPECT_FLOAT_EQ(fa3.problem.softmax_scale, 0.088f);
  EXPECT_EQ(text(fa3.device_class), "cuda:sm90");
  EXPECT_DOUBLE_EQ(fa3.latency_s, 0.00123);
  EXPECT_TRUE(fa3.energy_measured);
  EXPECT_EQ(fa3.status, 0);  // backfilled
  EXPECT_DOUBLE_EQ(fa3.wall_s, 0.00123);
  EXPECT_FALSE(fa3.approximate);
  EXPECT_EQ(text(fa3.detail), "");

  const ExecutionRecord& spectral = rows[1];
  EXPECT_FALSE(spectral.ok);
  EXPECT_EQ(spectral.status, PFA_STATUS_INTERNAL);  // v1 knew only "failed"
  EXPECT_EQ(text(spectral.failure), "device_error: boom");
  EXPECT_TRUE(spectral.explored);
  EXPECT_TRUE(spectral.approximate);
  EXPECT_EQ(spectral.source, RecordSource::bench);

  EXPECT_TRUE(rows[2].simulated);
  EXPECT_TRUE(std::isnan(rows[2].wall_s));  // a simulated row's wall time was never kept

  // Version 1 allowed two active models of one kind; the newest stays active.
  const auto active = store.active_model("latency");
  ASSERT_TRUE(active.has_value());
  EXPECT_EQ(active->model_json, "{\"a\":2}");
  EXPECT_EQ(active->trained_on_records, 200);
  EXPECT_EQ(active->metrics_json, "{}");
  EXPECT_EQ(active->max_record_id, 0);
  EXPECT_EQ(store.models("latency").size(), 2u);
  EXPECT_FALSE(store.active_model("energy").has_value());

  // The migrated store takes new records beside the old ones.
  store.insert(std::vector<ExecutionRecord>{testing::simple_record(7, 7)});
  EXPECT_EQ(store.count(), 4);
  EXPECT_GT(store.max_id(), rows.back().id);

  // Version 3: an empty pins table that takes pins.
  EXPECT_TRUE(store.pins().empty());
  store.pin({.problem = fa3.problem, .backend = "cuda_fa3"});
  EXPECT_EQ(store.pins().size(), 1u);
}

TEST(Store, PinsReplaceRemoveAndMatchByShape) {
  TempDir dir;
  const auto path = dir / "pfa.db";
  std::mt19937_64 rng(testing::fresh_seed());
  const int64_t seq = 64 << (rng() % 6);
  Problem a = make_problem(2, 16, 4, seq, 2 * seq, 128, PFA_DTYPE_BF16, true);
  a.device_type = 2;
  Problem b = make_problem(1, 8, 8, seq, seq, 64, PFA_DTYPE_FP32, false);
  {
    Store store(path);
    store.pin({.problem = a, .backend = "torch_sdpa"});
    store.pin({.problem = b, .backend = "cpu_flash", .created_us = 42});
    store.pin({.problem = a, .backend = "cuda_fa3"});  // replaces the first
  }
  Store store(path);
  const auto pins = store.pins();
  ASSERT_EQ(pins.size(), 2u);
  const Pin& pa = pin_matches(pins[0].problem, a) ? pins[0] : pins[1];
  const Pin& pb = pin_matches(pins[0].problem, a) ? pins[1] : pins[0];
  EXPECT_EQ(pa.backend, "cuda_fa3");
  EXPECT_EQ(pa.problem.heads_kv, 4);
  EXPECT_EQ(pa.problem.seqlen_k, 2 * seq);
  EXPECT_EQ(pa.problem.device_type, 2);
  EXPECT_GT(pa.created_us, 0);
  EXPECT_EQ(pb.backend, "cpu_flash");
  EXPECT_EQ(pb.created_us, 42);

  // Layout, lse and scale do not matter; the shape does.
  Problem a2 = a;
  a2.layout = PFA_LAYOUT_BHSD;
  a2.softmax_scale = 0.5f;
  EXPECT_TRUE(pin_matches(pa.problem, a2));
  a2.seqlen_q += 1;
  EXPECT_FALSE(pin_matches(pa.problem, a2));

  EXPECT_FALSE(store.unpin(a2));
  EXPECT_TRUE(store.unpin(a));
  EXPECT_FALSE(store.unpin(a));
  ASSERT_EQ(store.pins().size(), 1u);
  EXPECT_EQ(store.pins()[0].backend, "cpu_flash");
  EXPECT_THROW(store.pin({.problem = a, .backend = ""}), Error);
}

TEST(Store, SavesLoadsAndActivatesModels) {
  TempDir dir;
  Store store(dir / "pfa.db");
  EXPECT_FALSE(store.active_model("latency").has_value());
  EXPECT_TRUE(store.models("latency").empty());

  std::mt19937_64 rng(testing::fresh_seed());
  std::string big(300000, ' ');
  for (char& c : big) c = static_cast<char>('a' + rng() % 26);

  ModelRecord first{.created_us = 123,
                    .kind = "latency",
                    .model_json = "{\"learner\":\"" + big + "\"}",
                    .metrics_json = "{\"share\":0.98}",
                    .trained_on_records = 1000,
                    .max_record_id = 999};
  const int64_t id1 = store.save_model(first, true);
  const auto loaded = store.active_model("latency");
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->id, id1);
  EXPECT_EQ(loaded->created_us, 123);
  EXPECT_EQ(loaded->kind, "latency");
  EXPECT_EQ(loaded->model_json, first.model_json);
  EXPECT_EQ(loaded->metrics_json, first.metrics_json);
  EXPECT_EQ(loaded->trained_on_records, 1000);
  EXPECT_EQ(loaded->max_record_id, 999);
  EXPECT_TRUE(loaded->active);

  // A candidate saved inactive leaves the active model alone.
  ModelRecord candidate{.kind = "latency", .model_json = "{}", .metrics_json = "{}"};
  const int64_t id2 = store.save_model(candidate, false);
  EXPECT_GT(id2, id1);
  EXPECT_EQ(store.active_model("latency")->id, id1);
  const auto saved = store.model(id2);
  ASSERT_TRUE(saved.has_value());
  EXPECT_FALSE(saved->active);
  EXPECT_GT(saved->created_us, 1600000000000000);  // stamped with the current time

  // Activating it swaps the active one; kinds are independent.
  store.activate_model(id2);
  EXPECT_EQ(store.active_model("latency")->id, id2);
  EXPECT_FALSE(store.model(id1)->active);
  const int64_t id3 = store.save_model({.kind = "energy", .model_json = "[]"}, true);
  EXPECT_EQ(store.active_model("energy")->id, id3);
  EXPECT_EQ(store.active_model("latency")->id, id2);

  // Saving active replaces the active one.
  const int64_t id4 = store.save_model({.kind = "latency", .model_json = "{\"v\":4}"}, true);
  EXPECT_EQ(store.active_model("latency")->id, id4);

  const auto all = store.models("latency");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].id, id4);  // newest first
  EXPECT_EQ(all[2].id, id1);
  int active = 0;
  for (const auto& m : all) active += m.active ? 1 : 0;
  EXPECT_EQ(active, 1);

  expect_store_error([&] { store.activate_model(id4 + 100); }, {"no model with id"});
  EXPECT_THROW(store.save_model({}, true), Error);
  EXPECT_FALSE(store.model(id4 + 100).has_value());
}

TEST(Store, DefaultPathFollowsXdgStateHome) {
  TempDir dir;
  const char* old_state = std::getenv("XDG_STATE_HOME");
  const char* old_home = std::getenv("HOME");
  const std::string saved_state = old_state ? old_state : "";
  const std::string saved_home = old_home ? old_home : "";

  const auto state = dir / "state";
  setenv("XDG_STATE_HOME", state.c_str(), 1);
  EXPECT_EQ(Store::default_path(), state / "pfa" / "pfa.db");
  EXPECT_TRUE(std::filesystem::is_directory(state / "pfa"));

  // Unset, empty or relative: ~/.local/state.
  const auto home = dir / "home";
  std::filesystem::create_directories(home);
  setenv("HOME", home.c_str(), 1);
  for (const char* value : {static_cast<const char*>(nullptr), "", "relative/state"}) {
    if (value) {
      setenv("XDG_STATE_HOME", value, 1);
    } else {
      unsetenv("XDG_STATE_HOME");
    }
    EXPECT_EQ(Store::default_path(), home / ".local" / "state" / "pfa" / "pfa.db");
  }
  EXPECT_TRUE(std::filesystem::is_directory(home / ".local" / "state" / "pfa"));
  Store store(Store::default_path());  // and it opens
  EXPECT_EQ(store.count(), 0);

  // A state folder that cannot be created (a file is in the way) is a clear error.
  std::ofstream(dir / "blocker") << "x";
  setenv("XDG_STATE_HOME", (dir / "blocker").c_str(), 1);
  expect_store_error([] { Store::default_path(); }, {"cannot create", "XDG_STATE_HOME"});

  if (old_state) setenv("XDG_STATE_HOME", saved_state.c_str(), 1); else unsetenv("XDG_STATE_HOME");
  if (old_home) setenv("HOME", saved_home.c_str(), 1); else unsetenv("HOME");
}

TEST(Store, BadPathsGiveClearErrors) {
  TempDir dir;
  expect_store_error([&] { Store s(dir / "missing" / "pfa.db"); },
                     {"missing", "does not exist", "create it"});
  expect_store_error([&] { Store s(dir.path()); }, {"folder, not a file"});
  expect_store_error([&] { Store s(""); }, {"empty"});

  const auto junk = dir / "junk.db";
  std::ofstream(junk) << std::string(8192, 'j');
  expect_store_error([&] { Store s(junk); }, {"junk.db", "not an SQLite database"});

  const auto other = dir / "other.db";
  raw_exec(other, "CREATE TABLE t (x); INSERT INTO t VALUES (1);");
  expect_store_error([&] { Store s(other); }, {"not a pfa execution store"});

  const auto future = dir / "future.db";
  { Store s(future); }
  raw_exec(future, "PRAGMA user_version = 99");
  expect_store_error([&] { Store s(future); }, {"version 99", "newer"});

  if (geteuid() != 0) {  // root writes anywhere
    const auto locked = dir / "locked";
    std::filesystem::create_directories(locked);
    std::filesystem::permissions(locked, std::filesystem::perms::owner_read |
                                             std::filesystem::perms::owner_exec);
    expect_store_error([&] { Store s(locked / "pfa.db"); }, {"writable"});
    std::filesystem::permissions(locked, std::filesystem::perms::owner_all);
  }
}

TEST(Store, ConnectionsOfOneProcessSeeEachOther) {
  TempDir dir;
  Store a(dir / "pfa.db");
  Store b(dir / "pfa.db");
  a.insert(std::vector<ExecutionRecord>{testing::simple_record(1, 1), testing::simple_record(1, 2)});
  EXPECT_EQ(b.count(), 2);
  b.insert(std::vector<ExecutionRecord>{testing::simple_record(2, 1)});
  EXPECT_EQ(a.max_id(), 3);
}

TEST(Store, WaitsForAnotherWriterInsteadOfFailing) {
  TempDir dir;
  const auto path = dir / "pfa.db";
  Store store(path);
  // Another connection holds the write lock for a while; the insert waits and then succeeds.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  });
  const auto t0 = std::chrono::steady_clock::now();
  store.insert(std::vector<ExecutionRecord>{testing::simple_record(1, 1)});
  const auto waited = std::chrono::steady_clock::now() - t0;
  release.join();
  sqlite3_close(other);
  EXPECT_GE(waited, std::chrono::milliseconds(150));
  EXPECT_EQ(store.count(), 1);

  // With a short deadline, a lock held for longer gives a clear error and writes nothing.
  Store impatient(path, {.busy_timeout = std::chrono::milliseconds(20),
                         .write_deadline = std::chrono::milliseconds(100)});
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  expect_store_error(
      [&] { impatient.insert(std::vector<ExecutionRecord>{testing::simple_record(1, 2)}); },
      {"locked", "Another process"});
  sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_EQ(store.count(), 1);
}

// Two processes write one file at the same moment, many small transactions each; every row lands.
TEST(Store, TwoProcessesWriteOneFile) {
  TempDir dir;
  const auto path = dir / "shared.db";
  constexpr int kTransactions = 150;
  constexpr int kPerTransaction = 20;
  constexpr int kRecords = kTransactions * kPerTransaction;

  // Three steps in lockstep: both open the new file at once (both may try to create the schema),
  // the child says it is ready, then both write.
  int to_child[2], to_parent[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(to_parent), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child writes through an AsyncWriter with small batches; it reports through its exit
    // status only.
    int status = 0;
    try {
      close(to_child[1]);
      close(to_parent[0]);
      char byte;
      if (read(to_child[0], &byte, 1) != 1) _exit(3);
      AsyncWriter writer(path, {.capacity = 8192, .batch_size = 32,
                                .interval = std::chrono::milliseconds(1)});
      if (write(to_parent[1], "r", 1) != 1 || read(to_child[0], &byte, 1) != 1) _exit(3);
      for (int i = 0; i < kRecords; ++i) {
        if (!writer.enqueue(testing::simple_record(2, i))) status = 2;
        if (i % 32 == 31) std::this_thread::sleep_for(std::chrono::microseconds(300));
      }
      writer.flush();
      if (writer.written() != uint64_t{kRecords}) status = 4;
    } catch (...) {
      status = 1;
    }
    _exit(status);
  }
  close(to_child[0]);
  close(to_parent[1]);
  ASSERT_EQ(write(to_child[1], "o", 1), 1);
  {
    Store store(path);
    char byte;
    ASSERT_EQ(read(to_parent[0], &byte, 1), 1);
    ASSERT_EQ(write(to_child[1], "g", 1), 1);
    for (int t = 0; t < kTransactions; ++t) {
      std::vector<ExecutionRecord> batch;
      for (int i = 0; i < kPerTransaction; ++i) {
        batch.push_back(testing::simple_record(1, t * kPerTransaction + i));
      }
      store.insert(batch);
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  }
  close(to_child[1]);
  close(to_parent[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);

  Store store(path);
  const auto rows = store.records();
  ASSERT_EQ(rows.size(), 2u * kRecords);
  std::set<std::pair<int64_t, int64_t>> seen;
  std::set<int64_t> ids;
  for (const auto& r : rows) {
    seen.insert({r.problem.batch, r.problem.seqlen_q});
    ids.insert(r.id);
  }
  EXPECT_EQ(seen.size(), rows.size());
  EXPECT_EQ(ids.size(), rows.size());
  EXPECT_EQ(*ids.rbegin(), store.max_id());
  // How often the writer changed along the id order: > 1 means the two really overlapped. Not
  // asserted (a loaded machine may still run them one after the other); kept in the test's XML.
  int switches = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    switches += rows[i].problem.batch != rows[i - 1].problem.batch ? 1 : 0;
  }
  RecordProperty("writer_switches", switches);
}

// A writer killed mid-transaction leaves an intact file holding only whole transactions.
TEST(Store, ProcessKilledMidWriteLeavesWholeTransactions) {
  TempDir dir;
  const auto path = dir / "crash.db";
  { Store create(path); }
  constexpr int kPerTransaction = 250;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      Store store(path);
      std::vector<ExecutionRecord> batch;
      for (int i = 0; i < kPerTransaction; ++i) batch.push_back(testing::simple_record(9, i));
      for (;;) store.insert(batch);
    } catch (...) {
    }
    _exit(1);
  }
  {
    Store watcher(path);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (watcher.count() < 20 * kPerTransaction && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped on its own with status " << status;

  Store store(path);  // recovers the WAL left behind
  const int64_t n = store.count();
  EXPECT_GE(n, 20 * kPerTransaction);
  EXPECT_EQ(n % kPerTransaction, 0) << n << " rows is not a whole number of transactions";
  EXPECT_EQ(store.max_id(), n);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "ok");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  // And it takes new writes.
  store.insert(std::vector<ExecutionRecord>{testing::simple_record(1, 1)});
  EXPECT_EQ(store.count(), n + 1);
}

}  // namespace
}  // namespace pfa::store

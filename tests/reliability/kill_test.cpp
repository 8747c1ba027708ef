// kill -9 in the middle of heavy writing, again and again: after every kill the store passes
// SQLite's integrity check, and every batch the killed writer had seen committed is there.
#include <pfa/store/store.h>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

namespace pfa {
namespace {

namespace fs = std::filesystem;

store::ExecutionRecord record(int batch, int i) {
  store::ExecutionRecord r;
  r.problem = make_problem(1 + i % 4, 8, 8, 64 + batch, 64 + batch, 64, PFA_DTYPE_FP32, i % 2);
  store::set_text(r.backend, "cpu_flash");
  store::set_text(r.device_name, "test cpu");
  r.latency_s = 1e-3 * (1 + i);
  r.timestamp_us = batch * 1000 + i;
  return r;
}

std::string integrity(const fs::path& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return "cannot open";
  sqlite3_stmt* stmt = nullptr;
  std::string out = "no answer";
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

TEST(KillNine, RepeatedKillsLoseNoCommittedBatch) {
  const fs::path dir = fs::temp_directory_path() / ("pfa_kill_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path path = dir / "pfa.db";
  { store::Store create(path); }
  constexpr int kBatch = 200;
  std::mt19937 rng(std::random_device{}());
  int64_t confirmed_total = 0;
  for (int cycle = 0; cycle < 8; ++cycle) {
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(pipe_fds[0]);
      try {
        store::Store store(path);
        std::vector<store::ExecutionRecord> batch;
        for (int n = 0;; ++n) {
          batch.clear();
          for (int i = 0; i < kBatch; ++i) batch.push_back(record(n, i));
          store.insert(batch);
          const char committed = 1;  // one byte per batch that insert() returned from
          if (write(pipe_fds[1], &committed, 1) != 1) break;
        }
      } catch (...) {
      }
      _exit(1);
    }
    close(pipe_fds[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 150));
    ASSERT_EQ(kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped on its own, status " << status;
    int64_t confirmed = 0;
    char buffer[4096];
    for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof buffer)) > 0;) confirmed += n;
    close(pipe_fds[0]);
    confirmed_total += confirmed * kBatch;

    EXPECT_EQ(integrity(path), "ok") << "cycle " << cycle;
    store::Store store(path);
    const int64_t rows = store.count();
    EXPECT_GE(rows, confirmed_total) << "cycle " << cycle << ": committed batches lost";
    EXPECT_EQ(rows % kBatch, 0) << "a partial transaction survived";
    confirmed_total = rows;  // a batch committed but not yet reported counts from here on
  }
  RecordProperty("rows_after_8_kills", std::to_string(confirmed_total));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace pfa

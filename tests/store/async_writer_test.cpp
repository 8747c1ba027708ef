// AsyncWriter: many threads enqueue at once, a full queue drops and counts, flush and the
// destructor commit everything, a store that refuses a batch is counted and never hangs flush().
#include "store_test_util.h"

#include <pfa/error.h>
#include <pfa/store/async_writer.h>
#include <pfa/store/store.h>

#include <sqlite3.h>

#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

namespace pfa::store {
namespace {

using testing::TempDir;

// Holds the store's write lock from a separate connection, as another process would.
class WriteLock {
 public:
  explicit WriteLock(const std::filesystem::path& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  void release() {
    if (db_ == nullptr) return;
    sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
    db_ = nullptr;
  }
  ~WriteLock() { release(); }

 private:
  sqlite3* db_ = nullptr;
};

TEST(AsyncWriter, ThreadsEnqueueConcurrentlyAndEveryRecordLands) {
  TempDir dir;
  const auto path = dir / "pfa.db";
  constexpr int kThreads = 8;
  constexpr int kPerThread = 5000;
  AsyncWriter writer(path, {.capacity = 65536, .batch_size = 1024});
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&writer, t] {
        for (int i = 0; i < kPerThread; ++i) {
          EXPECT_TRUE(writer.enqueue(testing::simple_record(t, i)));
        }
      });
    }
  }
  writer.flush();
  EXPECT_EQ(writer.dropped(), 0u);
  EXPECT_EQ(writer.failed(), 0u);
  EXPECT_EQ(writer.enqueued(), uint64_t{kThreads * kPerThread});
  EXPECT_EQ(writer.written(), uint64_t{kThreads * kPerThread});
  EXPECT_GE(writer.batches(), uint64_t{kThreads * kPerThread / 1024});

  Store store(path);
  const auto rows = store.records();
  ASSERT_EQ(rows.size(), size_t{kThreads * kPerThread});
  std::set<std::pair<int64_t, int64_t>> seen;
  for (const auto& r : rows) {
    EXPECT_EQ(text(r.backend), "cpu_flash");
    seen.insert({r.problem.batch, r.problem.seqlen_q});
  }
  EXPECT_EQ(seen.size(), rows.size());
  // Each thread's records were committed in the order that thread enqueued them.
  std::vector<int64_t> last(kThreads, -1);
  for (const auto& r : rows) {
    EXPECT_GT(r.problem.seqlen_q, last[r.problem.batch]);
    last[r.problem.batch] = r.problem.seqlen_q;
  }
}

TEST(AsyncWriter, FullQueueDropsAndCounts) {
  TempDir dir;
  const auto path = dir / "pfa.db";
  { Store create(path); }
  AsyncWriter writer(path, {.capacity = 16, .batch_size = 4, .interval = std::chrono::milliseconds(1)});
  EXPECT_EQ(writer.capacity(), 16u);

  WriteLock lock(path);  // the writer thread stalls on its first commit
  constexpr int kAttempts = 2000;
  int accepted = 0;
  for (int i = 0; i < kAttempts; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    accepted += writer.enqueue(testing::simple_record(0, i)) ? 1 : 0;
    // Never blocks, even with the queue full and the store locked.
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(50));
  }
  EXPECT_LE(accepted, 16 + 4);  // the ring plus the batch the writer took before it stalled
  EXPECT_EQ(writer.dropped(), uint64_t(kAttempts - accepted));
  EXPECT_EQ(writer.enqueued(), uint64_t(accepted));

  lock.release();
  writer.flush();
  EXPECT_EQ(writer.written(), uint64_t(accepted));
  EXPECT_EQ(writer.failed(), 0u);
  EXPECT_EQ(Store(path).count(), accepted);

  // Once drained, the queue takes records again.
  EXPECT_TRUE(writer.enqueue(testing::simple_record(1, 1)));
  writer.flush();
  EXPECT_EQ(Store(path).count(), accepted + 1);
}

TEST(AsyncWriter, DestructorCommitsEverything) {
  TempDir dir;
  const auto path = dir / "pfa.db";
  {
    // A long interval: only the destructor's final drain commits these.
    AsyncWriter writer(path, {.interval = std::chrono::milliseconds(60000)});
    for (int i = 0; i < 777; ++i) ASSERT_TRUE(writer.enqueue(testing::simple_record(0, i)));
  }
  EXPECT_EQ(Store(path).count(), 777);
}

TEST(AsyncWriter, FlushCommitsWithoutWaitingForTheInterval) {
  TempDir dir;
  const auto path = dir / "pfa.db";
  AsyncWriter writer(path, {.interval = std::chrono::milliseconds(60000)});
  Store reader(path);
  for (int round = 1; round <= 3; ++round) {
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(writer.enqueue(testing::simple_record(round, i)));
    const auto t0 = std::chrono::steady_clock::now();
    writer.flush();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
    EXPECT_EQ(reader.count(), 10 * round);
  }
  writer.flush();  // nothing pending: returns at once
}

TEST(AsyncWriter, RefusedBatchIsCountedAndFlushReturns) {
  TempDir dir;
  const auto path = dir / "pfa.db";
  { Store create(path); }
  AsyncWriter writer(path, {.capacity = 64,
                            .store = {.busy_timeout = std::chrono::milliseconds(10),
                                      .write_deadline = std::chrono::milliseconds(50)}});
  WriteLock lock(path);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(writer.enqueue(testing::simple_record(0, i)));
  writer.flush();  // gives up on the locked store after the deadline
  EXPECT_EQ(writer.failed(), 10u);
  EXPECT_EQ(writer.written(), 0u);
  EXPECT_NE(writer.last_error().find("locked"), std::string::npos) << writer.last_error();
  lock.release();

  ASSERT_TRUE(writer.enqueue(testing::simple_record(1, 1)));
  writer.flush();
  EXPECT_EQ(writer.written(), 1u);
  EXPECT_EQ(Store(path).count(), 1);
}

TEST(AsyncWriter, AStoreFileRemovedUnderneathIsNoticedAndSaidOnce) {
  TempDir dir;
  const auto path = dir / "pfa.db";
  std::vector<std::string> said;
  std::mutex said_mutex;
  AsyncWriter writer(path, {.capacity = 64,
                            .on_first_failure = [&](const std::string& m) {
                              std::lock_guard lock(said_mutex);
                              said.push_back(m);
                            }});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(writer.enqueue(testing::simple_record(0, i)));
  writer.flush();
  EXPECT_EQ(writer.written(), 3u);
  std::filesystem::remove(path);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(writer.enqueue(testing::simple_record(1, i)));
    writer.flush();
  }
  EXPECT_EQ(writer.written(), 3u);
  EXPECT_EQ(writer.failed(), 12u);
  ASSERT_EQ(said.size(), 1u) << "said once, not per batch";
  EXPECT_NE(said[0].find("removed or replaced"), std::string::npos) << said[0];
}

TEST(AsyncWriter, AFullDiskIsCountedAndCommittedBatchesSurvive) {
  TempDir dir;
  const auto mount_point = dir / "small";
  std::filesystem::create_directories(mount_point);
  const std::string mount = "mount -t tmpfs -o size=640k tmpfs " + mount_point.string() +
                            " 2>/dev/null";
  if (std::system(mount.c_str()) != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root and mount rights)";
  }
  struct Unmount {
    std::string point;
    ~Unmount() { std::system(("umount " + point + " 2>/dev/null").c_str()); }
  } unmount{mount_point.string()};
  const auto path = mount_point / "pfa.db";
  int said = 0;
  uint64_t enqueued = 0;
  {
    AsyncWriter writer(path, {.capacity = 256, .on_first_failure = [&](const std::string&) { ++said; }});
    for (int round = 0; round < 200 && writer.failed() == 0; ++round) {
      for (int i = 0; i < 64; ++i) enqueued += writer.enqueue(testing::simple_record(round, i));
      writer.flush();
    }
    EXPECT_GT(writer.failed(), 0u) << "the disk never filled";
    EXPECT_GT(writer.written(), 0u);
    EXPECT_EQ(writer.written() + writer.failed(), enqueued);
    EXPECT_EQ(said, 1);
    const uint64_t written = writer.written();
    // What was committed before the disk filled is all there and the file is sound.
    Store store(path);
    EXPECT_EQ(static_cast<uint64_t>(store.count()), written);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* check = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &check, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(check), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(check, 0)), "ok");
  sqlite3_finalize(check);
  sqlite3_close(db);
}

TEST(AsyncWriter, BadPathThrowsBeforeAnyThreadStarts) {
  TempDir dir;
  EXPECT_THROW({ AsyncWriter w(dir / "no" / "such" / "pfa.db"); }, pfa::Error);
  EXPECT_THROW({ AsyncWriter w(dir / "pfa.db", {.capacity = 0}); }, pfa::Error);
}

}  // namespace
}  // namespace pfa::store

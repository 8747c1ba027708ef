// pfa::store::AsyncWriter: takes execution records from any thread without blocking and commits
// them to the store in batches on its own thread.
//
// The queue is a preallocated ring (a bounded multi-producer queue with a sequence number per slot):
// enqueue claims a slot with one compare-and-swap, copies the record in and publishes it. It never
// waits and never allocates; when the ring is full the record is dropped and counted. The writer
// thread wakes every `interval` (or when a batch is ready, or on flush) and commits what it finds,
// up to `batch_size` records per transaction, through its own Store connection.
#pragma once

#include <sys/types.h>

#include <functional>

#include <pfa/store/execution_record.h>
#include <pfa/store/store.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace pfa::store {

struct AsyncWriterOptions {
  // Ring slots, rounded up to a power of two. A slot holds one record (1 KB) and the ring is
  // allocated and touched up front (16 MB by default), so enqueue never meets a page fault.
  size_t capacity = 16384;
  size_t batch_size = 4096;                      // records per transaction at most
  std::chrono::milliseconds interval{50};        // longest a record waits before its commit starts
  StoreOptions store;                            // busy timeout and retry deadline of the connection
  // Called once, on the writer thread, the first time a batch cannot be committed (disk full, file
  // read-only, removed or replaced underneath). Calls go on unrecorded and are counted in failed().
  // Default: one line on stderr.
  std::function<void(const std::string& message)> on_first_failure;
};

class AsyncWriter {
 public:
  // Opens its own connection to the store at `path` (creating or migrating it); throws
  // pfa::Error(store) when it cannot, before any thread starts. One exception: an existing store
  // file that this process may not write (read-only file, folder or file system) does not stop the
  // application. The writer starts, every batch fails and is counted in failed(), and
  // on_first_failure says why once.
  explicit AsyncWriter(const std::filesystem::path& path, AsyncWriterOptions options = {});
  // Commits everything enqueued so far, then stops the writer thread.
  ~AsyncWriter();
  AsyncWriter(const AsyncWriter&) = delete;
  AsyncWriter& operator=(const AsyncWriter&) = delete;

  // Queues a record for the store; false (and counted in dropped()) when the queue is full.
  // Safe from any number of threads; never blocks, never allocates, never throws.
  bool enqueue(const ExecutionRecord& record) noexcept;

  // Waits until every record enqueued before this call is committed (or has failed; see failed()).
  void flush();

  uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
  uint64_t written() const noexcept { return written_.load(std::memory_order_acquire); }
  // Records lost because the store rejected their batch (disk full, file removed, ...).
  uint64_t failed() const noexcept { return failed_.load(std::memory_order_relaxed); }
  uint64_t enqueued() const noexcept { return tail_.load(std::memory_order_relaxed); }
  uint64_t batches() const noexcept { return batches_.load(std::memory_order_relaxed); }
  std::string last_error() const;  // empty when no batch has failed
  size_t capacity() const noexcept { return mask_ + 1; }
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  // Raw bytes for one record, cache-line aligned. Records are trivially copyable and move in and
  // out with memcpy.
  struct alignas(64) RecordBytes {
    unsigned char bytes[sizeof(ExecutionRecord)];
  };

  void run();
  size_t drain();  // moves published records into batch_; returns how many

  AsyncWriterOptions options_;
  std::filesystem::path path_;
  std::optional<Store> store_;  // empty: the store file exists but cannot be written
  std::string open_error_;      // why it cannot
  size_t mask_ = 0;
  size_t batch_size_ = 0;
  // Slot i is free for the producer of position p when sequences_[i] == p, and holds that
  // producer's record when it is p + 1.
  std::unique_ptr<std::atomic<uint64_t>[]> sequences_;
  std::unique_ptr<RecordBytes[]> records_;

  alignas(64) std::atomic<uint64_t> tail_{0};  // next slot producers claim
  alignas(64) std::atomic<uint64_t> dropped_{0};
  alignas(64) uint64_t head_ = 0;              // next slot the writer reads (writer thread only)
  std::atomic<uint64_t> consumed_{0};          // records taken off the ring and settled
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<uint64_t> batches_{0};
  std::vector<ExecutionRecord> batch_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;     // wakes the writer
  std::condition_variable settled_;  // wakes flush() callers
  uint64_t flush_target_ = 0;        // guarded by mutex_
  bool stop_ = false;                // guarded by mutex_
  std::string last_error_;           // guarded by mutex_
  bool reported_failure_ = false;    // writer thread only
  dev_t file_device_ = 0;            // the store file as opened, to notice it being replaced
  ino_t file_inode_ = 0;
  std::thread thread_;
};

}  // namespace pfa::store

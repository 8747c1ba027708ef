#include <pfa/error.h>
#include <pfa/store/async_writer.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <type_traits>

namespace pfa::store {

static_assert(std::is_trivially_copyable_v<ExecutionRecord>,
              "ExecutionRecord must stay trivially copyable: the queue moves it with memcpy");

AsyncWriter::AsyncWriter(const std::filesystem::path& path, AsyncWriterOptions options)
    : options_(options), path_(path) {
  try {
    store_.emplace(path, options.store);
  } catch (const Error& e) {
    // A store file that exists but may not be written: the application goes on unrecorded.
    std::error_code ec;
    const auto folder = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    if (!std::filesystem::is_regular_file(path, ec) ||
        (::access(path.c_str(), W_OK) == 0 && ::access(folder.c_str(), W_OK) == 0)) {
      throw;
    }
    open_error_ = e.what();
  }
  if (options_.capacity == 0 || options_.capacity > (size_t{1} << 30)) {
    throw Error(ErrorCode::invalid_argument,
                "AsyncWriter: capacity " + std::to_string(options_.capacity) +
                    " is out of range: pick between 1 and 2^30 records");
  }
  const size_t capacity = std::bit_ceil(options_.capacity);
  mask_ = capacity - 1;
  batch_size_ = std::clamp<size_t>(options_.batch_size, 1, capacity);
  if (options_.interval <= std::chrono::milliseconds::zero()) {
    options_.interval = std::chrono::milliseconds(1);
  }
  sequences_ = std::make_unique<std::atomic<uint64_t>[]>(capacity);
  for (size_t i = 0; i < capacity; ++i) sequences_[i].store(i, std::memory_order_relaxed);
  records_.reset(new RecordBytes[capacity]);
  // Touch every page now: a first-lap enqueue would otherwise pay a page fault every few records.
  std::memset(static_cast<void*>(records_.get()), 0, capacity * sizeof(RecordBytes));
  batch_.reserve(batch_size_);
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) {
    file_device_ = st.st_dev;
    file_inode_ = st.st_ino;
  }
  if (!options_.on_first_failure) {
    options_.on_first_failure = [](const std::string& message) {
      std::fprintf(stderr, "pfa: %s\n", message.c_str());
    };
  }
  thread_ = std::thread([this] { run(); });
}

AsyncWriter::~AsyncWriter() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

bool AsyncWriter::enqueue(const ExecutionRecord& record) noexcept {
  uint64_t pos = tail_.load(std::memory_order_relaxed);
  for (;;) {
    std::atomic<uint64_t>& sequence = sequences_[pos & mask_];
    const uint64_t seq = sequence.load(std::memory_order_acquire);
    const auto lag = static_cast<int64_t>(seq - pos);
    if (lag == 0) {
      // The slot is free for position pos: claim it, fill it, publish it.
      if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        std::memcpy(records_[pos & mask_].bytes, &record, sizeof record);
        sequence.store(pos + 1, std::memory_order_release);
        // Wake the writer once per full batch; otherwise it wakes on its own timer. A wake that
        // races with the writer going to sleep costs at most one interval of delay.
        if ((pos + 1) % batch_size_ == 0) wake_.notify_one();
        return true;
      }
      // pos now holds the current tail; try again.
    } else if (lag < 0) {
      // The slot still holds a record from one lap ago: the ring is full.
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    } else {
      pos = tail_.load(std::memory_order_relaxed);
    }
  }
}

size_t AsyncWriter::drain() {
  batch_.clear();
  while (batch_.size() < batch_size_) {
    std::atomic<uint64_t>& sequence = sequences_[head_ & mask_];
    if (sequence.load(std::memory_order_acquire) != head_ + 1) break;  // not published yet
    ExecutionRecord& r = batch_.emplace_back();
    std::memcpy(&r, records_[head_ & mask_].bytes, sizeof r);
    // Free the slot for the producer one lap ahead right away: the ring refills during the commit.
    sequence.store(head_ + mask_ + 1, std::memory_order_release);
    ++head_;
  }
  return batch_.size();
}

void AsyncWriter::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait_for(lock, options_.interval, [&] {
      return stop_ || flush_target_ > consumed_.load(std::memory_order_relaxed) ||
             tail_.load(std::memory_order_relaxed) - head_ >= batch_size_;
    });
    const bool stopping = stop_;
    lock.unlock();

    size_t settled = 0;
    for (;;) {
      const size_t n = drain();
      if (n == 0) break;
      try {
        // SQLite keeps writing to a file that was deleted or replaced under it, and the records
        // would vanish with the old inode: check that the path still names the file we opened.
        if (!store_) throw Error(ErrorCode::store, open_error_);
        struct stat st {};
        if (::stat(path_.c_str(), &st) != 0 || st.st_dev != file_device_ ||
            st.st_ino != file_inode_) {
          throw Error(ErrorCode::store, "the store file " + path_.string() +
                                            " was removed or replaced while pfa had it open; "
                                            "executions are no longer recorded");
        }
        store_->insert(batch_);
        written_.fetch_add(n, std::memory_order_release);
        batches_.fetch_add(1, std::memory_order_relaxed);
      } catch (const std::exception& e) {
        failed_.fetch_add(n, std::memory_order_relaxed);
        {
          std::lock_guard error_lock(mutex_);
          last_error_ = e.what();
        }
        if (!reported_failure_) {
          reported_failure_ = true;
          options_.on_first_failure(std::string("cannot record executions: ") + e.what() +
                                    " (calls continue; unrecorded ones are counted)");
        }
      }
      consumed_.fetch_add(n, std::memory_order_release);
      settled += n;
      if (n < batch_size_) break;  // caught up; let more arrive
    }

    lock.lock();
    if (settled != 0) settled_.notify_all();
    if (stopping && head_ == tail_.load(std::memory_order_acquire)) return;
    if (settled == 0 && (stopping || flush_target_ > consumed_.load(std::memory_order_relaxed))) {
      // A producer claimed a slot but has not published it yet: give it a moment.
      lock.unlock();
      std::this_thread::yield();
      lock.lock();
    }
  }
}

void AsyncWriter::flush() {
  const uint64_t target = tail_.load(std::memory_order_acquire);
  std::unique_lock lock(mutex_);
  if (consumed_.load(std::memory_order_acquire) >= target) return;
  flush_target_ = std::max(flush_target_, target);
  wake_.notify_one();
  settled_.wait(lock, [&] { return consumed_.load(std::memory_order_acquire) >= target; });
}

std::string AsyncWriter::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

}  // namespace pfa::store

// pfa::store::StoreObserver: the engine's ExecutionObserver that records every execution in the
// store. It turns an Execution into an ExecutionRecord and enqueues it; the AsyncWriter commits it.
#pragma once

#include <pfa/engine.h>
#include <pfa/store/async_writer.h>
#include <pfa/store/execution_record.h>

#include <array>
#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace pfa::store {

// The version of pfa that wrote a record.
const char* pfa_version() noexcept;

// The coarse device feature the router learns on: "cpu", "cuda:sm90" (from an "sm_90" or "sm90a"
// in the device detail), "cuda" when the detail names no architecture, else the DLPack device name.
std::string device_class(int32_t dl_device_type, std::string_view device_detail);

class StoreObserver final : public ExecutionObserver {
 public:
  // Records into an existing writer (shared, e.g. with a bench loop).
  explicit StoreObserver(std::shared_ptr<AsyncWriter> writer,
                         RecordSource source = RecordSource::engine);
  // Opens a writer of its own on the store at `path`. Throws pfa::Error(store).
  explicit StoreObserver(const std::filesystem::path& path, AsyncWriterOptions options = {},
                         RecordSource source = RecordSource::engine);

  // Builds the record and enqueues it; a full queue drops it (see writer().dropped()).
  void on_execution(const Execution& execution) noexcept override;

  // The record on_execution would enqueue. Looks the device up once per plugin and device.
  void fill_record(const Execution& execution, ExecutionRecord& record) noexcept;

  AsyncWriter& writer() noexcept { return *writer_; }
  const std::shared_ptr<AsyncWriter>& shared_writer() const noexcept { return writer_; }

 private:
  // A device as the store records it, looked up once per (plugin, device type, device id).
  struct Device {
    const Plugin* plugin = nullptr;
    int32_t device_type = 0;
    int32_t device_id = 0;
    Text<128> name{};
    Text<256> detail{};
    Text<32> device_class{};
  };
  static constexpr size_t kMaxDevices = 64;

  const Device* find_device(const Plugin& plugin, int32_t type, int32_t id) const noexcept;
  const Device* lookup_device(const Plugin& plugin, int32_t type, int32_t id) noexcept;

  std::shared_ptr<AsyncWriter> writer_;
  RecordSource source_;
  // Readers scan the first device_count_ entries without a lock; entries are written under
  // device_mutex_ before the count that covers them is published.
  std::array<Device, kMaxDevices> devices_{};
  std::atomic<size_t> device_count_{0};
  std::mutex device_mutex_;
  Device overflow_{};  // used (under the mutex) when more devices than kMaxDevices appear
};

}  // namespace pfa::store

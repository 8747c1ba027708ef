// pfa::store::Store: one connection to the execution store, an SQLite file in WAL mode.
//
// Several processes may open the same file at once: readers never wait for writers, writers take
// the write lock up front (BEGIN IMMEDIATE), wait for it up to the busy timeout and retry when it
// stays taken. A Store object may be shared between threads; its calls are serialised.
#pragma once

#include <pfa/store/execution_record.h>
#include <pfa/store/pin.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pfa::store {

struct StoreOptions {
  // How long one attempt waits for another connection's lock (SQLite's busy timeout).
  std::chrono::milliseconds busy_timeout{5000};
  // How long a write keeps retrying, in total, before it gives up with pfa::Error.
  std::chrono::milliseconds write_deadline{60000};
};

// Which records to read: ids above since_id, one backend (empty: all), successful runs only,
// at most limit rows (0: no limit). Rows come in id order.
struct RecordQuery {
  int64_t since_id = 0;
  std::string backend;
  bool ok_only = false;
  int64_t limit = 0;
};

// A trained routing model. kind names what it predicts (e.g. "latency"); model_json is the
// model in its library's own format; metrics_json its training and held-out figures.
struct ModelRecord {
  int64_t id = 0;          // assigned by save_model
  int64_t created_us = 0;  // 0: save_model stamps the current time
  std::string kind;
  std::string model_json;
  std::string metrics_json;
  int64_t trained_on_records = 0;
  int64_t max_record_id = 0;  // the newest execution the model has seen
  bool active = false;
};

class Store {
 public:
  using RecordQuery = pfa::store::RecordQuery;
  using ModelRecord = pfa::store::ModelRecord;

  // $XDG_STATE_HOME/pfa/pfa.db, else ~/.local/state/pfa/pfa.db. Creates the folder; throws
  // pfa::Error(store) when it cannot.
  static std::filesystem::path default_path();

  // Opens the store file, creating it (and its schema) when missing, migrating an older schema.
  // Throws pfa::Error(store) saying what was wrong and what to do.
  explicit Store(const std::filesystem::path& path, const StoreOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;

  // Appends records in one transaction, retrying while another process holds the write lock.
  // Ids are assigned in order (the records' own id fields are ignored); when `ids` is given
  // (records.size() entries) it receives them. Throws pfa::Error(store); nothing is written then.
  void insert(std::span<const ExecutionRecord> records, std::span<int64_t> ids = {});

  std::vector<ExecutionRecord> records(const RecordQuery& q = {}) const;
  // Streams the same rows one at a time, for passes over more records than should sit in memory
  // at once (a record is 1 KB). `visit` must not call back into this Store (it holds its lock);
  // if the store is busy mid-way the pass restarts after the last row visited.
  void for_each_record(const RecordQuery& q,
                       const std::function<void(const ExecutionRecord&)>& visit) const;
  int64_t count(const RecordQuery& q = {}) const;
  int64_t max_id() const;  // 0 when empty

  // Saves a model and returns its id; make_active makes it the one active model of its kind.
  int64_t save_model(const ModelRecord& model, bool make_active);
  // Makes an existing model the active one of its kind. Throws pfa::Error(store) if there is none.
  void activate_model(int64_t id);
  std::optional<ModelRecord> active_model(std::string_view kind) const;
  std::optional<ModelRecord> model(int64_t id) const;
  std::vector<ModelRecord> models(std::string_view kind) const;  // newest first

  // Pins `pin.problem`'s shape to `pin.backend`, replacing an earlier pin of the same shape.
  void pin(const Pin& pin);
  // Removes the pin of the problem's shape; false when there was none.
  bool unpin(const Problem& problem);
  std::vector<Pin> pins() const;  // in shape order

  const std::filesystem::path& path() const;
  int schema_version() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pfa::store

#include <pfa/error.h>
#include <pfa/store/schema.h>
#include <pfa/store/store.h>

#include <sqlite3.h>

#include <pwd.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <random>
#include <thread>
#include <type_traits>

namespace pfa::store {

namespace fs = std::filesystem;

const char* source_name(RecordSource source) noexcept {
  switch (source) {
    case RecordSource::engine: return "engine";
    case RecordSource::bench: return "bench";
    case RecordSource::evaluate: return "evaluate";
    case RecordSource::imported: return "imported";
  }
  return "unknown";
}

namespace {

// Thrown inside a transaction when SQLite reports the database busy; the transaction is retried.
struct Busy {};

bool is_busy(int rc) noexcept {
  const int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

int64_t now_us() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Calls f(column_name, field) for every stored field of a record, in column order. The insert, the
// select and the row reader are all built from this one list, so they cannot disagree.
template <class Record, class F>
void for_each_column(Record& r, F&& f) {
  f("timestamp_us", r.timestamp_us);
  f("batch", r.problem.batch);
  f("heads_q", r.problem.heads_q);
  f("heads_kv", r.problem.heads_kv);
  f("seqlen_q", r.problem.seqlen_q);
  f("seqlen_k", r.problem.seqlen_k);
  f("head_dim", r.problem.head_dim);
  f("dtype", r.problem.dtype);
  f("layout", r.problem.layout);
  f("causal", r.problem.causal);
  f("want_lse", r.problem.want_lse);
  f("softmax_scale", r.problem.softmax_scale);
  f("device_type", r.problem.device_type);
  f("device_id", r.problem.device_id);
  f("backend", r.backend);
  f("backend_version", r.backend_version);
  f("device_name", r.device_name);
  f("device_detail", r.device_detail);
  f("device_class", r.device_class);
  f("latency_s", r.latency_s);
  f("energy_j", r.energy_j);
  f("energy_measured", r.energy_measured);
  f("rel_error", r.rel_error);
  f("error_estimate", r.error_estimate);
  f("ok", r.ok);
  f("failure", r.failure);
  f("explored", r.explored);
  f("simulated", r.simulated);
  f("source", r.source);
  f("pfa_version", r.pfa_version);
  f("status", r.status);
  f("approximate", r.approximate);
  f("wall_s", r.wall_s);
  f("detail", r.detail);
  f("ranks", r.problem.ranks);
}

template <class T>
struct IsText : std::false_type {};
template <size_t N>
struct IsText<Text<N>> : std::true_type {};

// Binds one field to parameter `index` (1-based) and advances it.
struct Binder {
  sqlite3_stmt* stmt;
  int index = 1;
  int rc = SQLITE_OK;

  template <class T>
  void operator()(const char*, const T& value) {
    int r;
    if constexpr (IsText<T>::value) {
      const std::string_view s = text(value);
      r = sqlite3_bind_text(stmt, index, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
    } else if constexpr (std::is_floating_point_v<T>) {
      // SQLite turns NaN into NULL anyway; say so explicitly and read NULL back as NaN.
      r = std::isnan(value) ? sqlite3_bind_null(stmt, index)
                            : sqlite3_bind_double(stmt, index, static_cast<double>(value));
    } else if constexpr (std::is_enum_v<T>) {
      r = sqlite3_bind_int64(stmt, index, static_cast<int64_t>(value));
    } else {
      r = sqlite3_bind_int64(stmt, index, static_cast<int64_t>(value));
    }
    if (r != SQLITE_OK && rc == SQLITE_OK) rc = r;
    ++index;
  }
};

// Reads one field from result column `index` (0-based) and advances it.
struct Reader {
  sqlite3_stmt* stmt;
  int index = 0;

  template <class T>
  void operator()(const char*, T& value) {
    if constexpr (IsText<T>::value) {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, index));
      const int n = sqlite3_column_bytes(stmt, index);
      set_text(value, p ? std::string_view(p, static_cast<size_t>(n)) : std::string_view());
    } else if constexpr (std::is_floating_point_v<T>) {
      value = sqlite3_column_type(stmt, index) == SQLITE_NULL
                  ? std::numeric_limits<T>::quiet_NaN()
                  : static_cast<T>(sqlite3_column_double(stmt, index));
    } else if constexpr (std::is_same_v<T, bool>) {
      value = sqlite3_column_int64(stmt, index) != 0;
    } else {
      value = static_cast<T>(sqlite3_column_int64(stmt, index));
    }
    ++index;
  }
};

std::string column_list() {
  std::string out;
  ExecutionRecord r;
  for_each_column(r, [&](const char* name, auto&) {
    if (!out.empty()) out += ", ";
    out += name;
  });
  return out;
}

std::string insert_sql() {
  std::string params;
  ExecutionRecord r;
  for_each_column(r, [&](const char*, auto&) { params += params.empty() ? "?" : ", ?"; });
  return "INSERT INTO executions (" + column_list() + ") VALUES (" + params + ")";
}

// Variant v of a record filter: bit 0 filters by backend, bit 1 keeps successful runs only.
std::string where_clause(int variant) {
  std::string w = " WHERE id > ?1";
  if (variant & 1) w += " AND backend = ?2";
  if (variant & 2) w += " AND ok = 1";
  return w;
}

int filter_variant(const RecordQuery& q) noexcept {
  return (q.backend.empty() ? 0 : 1) | (q.ok_only ? 2 : 0);
}

constexpr const char* kModelColumns =
    "id, created_us, kind, model_json, metrics_json, trained_on_records, max_record_id, active";

constexpr const char* kPinKey =
    "batch, heads_q, heads_kv, seqlen_q, seqlen_k, head_dim, dtype, causal, device_type";

// Binds a pin's key fields to parameters 1..9.
void bind_pin_key(sqlite3_stmt* stmt, const Problem& p) {
  const int64_t key[] = {p.batch, p.heads_q, p.heads_kv, p.seqlen_q, p.seqlen_k, p.head_dim,
                         p.dtype, p.causal != 0, p.device_type};
  for (int i = 0; i < 9; ++i) sqlite3_bind_int64(stmt, i + 1, key[i]);
}

class Statement {
 public:
  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }
  sqlite3_stmt** out() noexcept { return &stmt_; }
  sqlite3_stmt* get() const noexcept { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Leaves a statement ready for its next use however the current one ends.
struct ResetOnExit {
  sqlite3_stmt* stmt;
  ~ResetOnExit() {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  }
};

std::string column_string(sqlite3_stmt* stmt, int index) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, index));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt, index))) : std::string();
}

ModelRecord read_model(sqlite3_stmt* stmt) {
  ModelRecord m;
  m.id = sqlite3_column_int64(stmt, 0);
  m.created_us = sqlite3_column_int64(stmt, 1);
  m.kind = column_string(stmt, 2);
  m.model_json = column_string(stmt, 3);
  m.metrics_json = column_string(stmt, 4);
  m.trained_on_records = sqlite3_column_int64(stmt, 5);
  m.max_record_id = sqlite3_column_int64(stmt, 6);
  m.active = sqlite3_column_int64(stmt, 7) != 0;
  return m;
}

}  // namespace

struct Store::Impl {
  fs::path path;
  StoreOptions options;
  sqlite3* db = nullptr;
  mutable std::mutex mutex;  // serialises use of the connection and its statements
  int version = 0;

  Statement begin, commit, rollback;
  Statement insert_execution;
  std::array<Statement, 4> select_records, count_records;
  Statement max_id;
  Statement insert_model, deactivate_kind, activate_id, model_kind, select_active, select_id,
      select_kind;
  Statement upsert_pin, delete_pin, select_pins;

  ~Impl() {
    // Statements must be finalized before the connection closes; Statement members die after this
    // body, so finalize them here explicitly.
    for (Statement* s : {&begin, &commit, &rollback, &insert_execution, &max_id, &insert_model,
                         &deactivate_kind, &activate_id, &model_kind, &select_active, &select_id,
                         &select_kind, &upsert_pin, &delete_pin, &select_pins}) {
      sqlite3_finalize(s->get());
      *s->out() = nullptr;
    }
    for (auto* group : {&select_records, &count_records}) {
      for (Statement& s : *group) {
        sqlite3_finalize(s.get());
        *s.out() = nullptr;
      }
    }
    if (db != nullptr) sqlite3_close_v2(db);
  }

  std::string where() const { return "the execution store '" + path.string() + "'"; }

  [[noreturn]] void fail(const std::string& what, int rc, const std::string& advice) const {
    std::string message = where() + ": " + what;
    if (rc != SQLITE_OK) {
      message += " (";
      message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      message += ")";
    }
    if (!advice.empty()) message += ". " + advice;
    throw Error(ErrorCode::store, message);
  }

  // The advice that fits an SQLite error code.
  static std::string advice_for(int rc) {
    switch (rc & 0xff) {
      case SQLITE_NOTADB:
        return "The file is not an SQLite database: move it away or choose another store path";
      case SQLITE_CORRUPT:
        return "The file is damaged: move it away (a new store is created in its place) or "
               "restore a backup";
      case SQLITE_READONLY:
        return "The file, its folder or its file system is read-only for this user: make them "
               "writable, run as the store's owner, or choose another store path";
      case SQLITE_PERM:
      case SQLITE_CANTOPEN:
        return "Check that the file and its folder exist and are writable, or choose another "
               "store path";
      case SQLITE_FULL:
        return "The disk is full: free space or choose a store path on another disk";
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        return "Another process holds the store's lock: wait for it to finish, or use another "
               "store path";
      default:
        return "Check the file, or choose another store path";
    }
  }

  void prepare(Statement& s, const std::string& sql) {
    const int rc = sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size() + 1),
                                      SQLITE_PREPARE_PERSISTENT, s.out(), nullptr);
    if (rc != SQLITE_OK) fail("cannot prepare '" + sql + "'", rc, advice_for(rc));
  }

  // Runs a statement that returns no rows. Busy throws Busy so that the caller can retry.
  void run(sqlite3_stmt* stmt, const char* what) {
    ResetOnExit reset{stmt};
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    }
    if (rc == SQLITE_DONE) return;
    if (is_busy(rc)) throw Busy{};
    fail(what, rc, advice_for(rc));
  }

  // Runs every statement of a script (schema creation, migrations), each one prepared in turn.
  void run_script(std::string_view script, const char* what) {
    const char* tail = script.data();
    const char* end = script.data() + script.size();
    while (tail < end) {
      sqlite3_stmt* stmt = nullptr;
      const char* next = nullptr;
      int rc = sqlite3_prepare_v2(db, tail, static_cast<int>(end - tail), &stmt, &next);
      if (rc != SQLITE_OK) {
        if (is_busy(rc)) throw Busy{};
        fail(what, rc, advice_for(rc));
      }
      tail = next;
      if (stmt == nullptr) continue;  // whitespace or a comment
      while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      }
      sqlite3_finalize(stmt);
      if (is_busy(rc)) throw Busy{};
      if (rc != SQLITE_DONE) fail(what, rc, advice_for(rc));
    }
  }

  // A one-row, one-column query run from text (pragmas at open time).
  int64_t query_int(const char* sql) {
    Statement s;
    int rc = sqlite3_prepare_v2(db, sql, -1, s.out(), nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(s.get());
    if (rc == SQLITE_ROW) return sqlite3_column_int64(s.get(), 0);
    if (is_busy(rc)) throw Busy{};
    fail(std::string("cannot read '") + sql + "'", rc, advice_for(rc));
  }

  std::string query_text(const char* sql) {
    Statement s;
    int rc = sqlite3_prepare_v2(db, sql, -1, s.out(), nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(s.get());
    if (rc == SQLITE_ROW) return column_string(s.get(), 0);
    if (is_busy(rc)) throw Busy{};
    fail(std::string("cannot run '") + sql + "'", rc, advice_for(rc));
  }

  // Retries `body` while SQLite reports busy, with growing, jittered pauses, until the deadline.
  template <class F>
  auto with_retry(F&& body, const char* what) {
    const auto deadline = std::chrono::steady_clock::now() + options.write_deadline;
    std::minstd_rand jitter(static_cast<unsigned>(now_us()) ^ static_cast<unsigned>(getpid()));
    for (int attempt = 0;; ++attempt) {
      try {
        return body();
      } catch (const Busy&) {
        if (std::chrono::steady_clock::now() >= deadline) {
          fail(std::string(what) + ": the store stayed locked by another connection for " +
                   std::to_string(options.write_deadline.count()) + " ms",
               SQLITE_OK, advice_for(SQLITE_BUSY));
        }
        const int cap_ms = std::min(100, 1 << std::min(attempt, 7));
        std::this_thread::sleep_for(
            std::chrono::microseconds(500 + jitter() % (static_cast<unsigned>(cap_ms) * 1000)));
      }
    }
  }

  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT, retrying the whole transaction when busy.
  template <class F>
  void write_transaction(F&& body, const char* what) {
    with_retry(
        [&] {
          run(begin.get(), what);
          try {
            body();
            run(commit.get(), what);
          } catch (...) {
            sqlite3_step(rollback.get());
            sqlite3_reset(rollback.get());
            throw;
          }
        },
        what);
  }

  void open() {
    std::error_code ec;
    if (path.empty()) {
      throw Error(ErrorCode::store,
                  "the execution store path is empty: name a file, e.g. --store ./pfa.db");
    }
    const fs::path folder = path.has_parent_path() ? path.parent_path() : fs::path(".");
    if (!fs::is_directory(folder, ec)) {
      throw Error(ErrorCode::store, where() + ": the folder '" + folder.string() +
                                        "' does not exist: create it or choose another store path");
    }
    if (fs::is_directory(path, ec)) {
      throw Error(ErrorCode::store,
                  where() + ": this is a folder, not a file: name a file inside it, e.g. '" +
                      (path / "pfa.db").string() + "'");
    }
    int rc = sqlite3_open_v2(path.c_str(), &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) fail("cannot open it", rc, advice_for(rc));
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, static_cast<int>(options.busy_timeout.count()));
    // SQLite quietly opens a file it may not write read-only; say so now, not at the first write.
    if (sqlite3_db_readonly(db, "main") == 1) {
      fail("cannot be written", SQLITE_OK, advice_for(SQLITE_READONLY));
    }

    // WAL: readers never block the writer and the writer never blocks readers; NORMAL sync is
    // durable against crashes of the process (a power cut may lose the last commits, not the file).
    const std::string mode =
        with_retry([&] { return query_text("PRAGMA journal_mode = WAL"); }, "cannot open it");
    if (mode != "wal") {
      fail("SQLite could not switch it to WAL mode (it reports '" + mode + "')", SQLITE_OK,
           "Put the store on a local file system that supports shared memory, or choose another "
           "store path");
    }
    with_retry([&] { run_script("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                                "cannot configure it"); },
               "cannot configure it");

    prepare(begin, "BEGIN IMMEDIATE");
    prepare(commit, "COMMIT");
    prepare(rollback, "ROLLBACK");
    migrate();

    prepare(insert_execution, insert_sql());
    const std::string columns = column_list();
    for (int v = 0; v < 4; ++v) {
      prepare(select_records[v],
              "SELECT id, " + columns + " FROM executions" + where_clause(v) + " ORDER BY id LIMIT ?3");
      prepare(count_records[v], "SELECT count(*) FROM executions" + where_clause(v));
    }
    prepare(max_id, "SELECT coalesce(max(id), 0) FROM executions");
    prepare(insert_model,
            "INSERT INTO models (created_us, kind, model_json, metrics_json, trained_on_records, "
            "max_record_id, active) VALUES (?, ?, ?, ?, ?, ?, ?)");
    prepare(deactivate_kind, "UPDATE models SET active = 0 WHERE kind = ?1 AND active");
    prepare(activate_id, "UPDATE models SET active = 1 WHERE id = ?1");
    prepare(model_kind, "SELECT kind FROM models WHERE id = ?1");
    prepare(select_active,
            std::string("SELECT ") + kModelColumns + " FROM models WHERE kind = ?1 AND active");
    prepare(select_id, std::string("SELECT ") + kModelColumns + " FROM models WHERE id = ?1");
    prepare(select_kind, std::string("SELECT ") + kModelColumns +
                             " FROM models WHERE kind = ?1 ORDER BY id DESC");
    prepare(upsert_pin, std::string("INSERT OR REPLACE INTO pins (") + kPinKey +
                            ", backend, created_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                            "?10, ?11)");
    prepare(delete_pin, std::string("DELETE FROM pins WHERE (") + kPinKey +
                            ") = (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    prepare(select_pins, std::string("SELECT ") + kPinKey + ", backend, created_us FROM pins "
                             "ORDER BY " + kPinKey);
  }

  void check_version(int64_t v) const {
    if (v > kSchemaVersion) {
      fail("its schema version " + std::to_string(v) + " is newer than this pfa understands (" +
               std::to_string(kSchemaVersion) + ")",
           SQLITE_OK, "Use a newer pfa with this store, or choose another store path");
    }
    if (v < 0) fail("its schema version " + std::to_string(v) + " is invalid", SQLITE_OK,
                    "Move the file away or choose another store path");
  }

  // Brings the schema to kSchemaVersion. Runs in one write transaction and re-reads the version
  // inside it, so two processes opening a new file at once create the schema exactly once.
  void migrate() {
    int64_t v = with_retry([&] { return query_int("PRAGMA user_version"); }, "cannot read it");
    check_version(v);
    if (v == kSchemaVersion) {
      version = static_cast<int>(v);
      return;
    }
    write_transaction(
        [&] {
          v = query_int("PRAGMA user_version");
          check_version(v);
          if (v == 0) {
            const int64_t tables = query_int(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND "
                "name NOT LIKE 'sqlite_%'");
            if (tables != 0) {
              fail("it is an SQLite database but not a pfa execution store", SQLITE_OK,
                   "Choose another store path");
            }
            run_script(schema_v1_script(), "cannot create the schema");
            v = 1;
          }
          for (int next = static_cast<int>(v) + 1; next <= kSchemaVersion; ++next) {
            run_script(migration_script(next),
                       ("cannot migrate the schema to version " + std::to_string(next)).c_str());
          }
          v = query_int("PRAGMA user_version");
          if (v != kSchemaVersion) {
            fail("the schema migration ended at version " + std::to_string(v) + ", not " +
                     std::to_string(kSchemaVersion),
                 SQLITE_OK, "Report this as a bug in pfa");
          }
        },
        "cannot create or migrate the schema");
    version = kSchemaVersion;
  }

  void bind_query(sqlite3_stmt* stmt, const RecordQuery& q, bool with_limit) {
    sqlite3_bind_int64(stmt, 1, q.since_id);
    if (!q.backend.empty()) {
      sqlite3_bind_text(stmt, 2, q.backend.data(), static_cast<int>(q.backend.size()),
                        SQLITE_STATIC);
    }
    if (with_limit) sqlite3_bind_int64(stmt, 3, q.limit > 0 ? q.limit : -1);
  }

  // Steps a read statement: true for a row, false when done; Busy or pfa::Error otherwise.
  bool step_read(sqlite3_stmt* stmt, const char* what) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    if (is_busy(rc)) throw Busy{};
    fail(what, rc, advice_for(rc));
  }
};

fs::path Store::default_path() {
  fs::path base;
  const char* state = std::getenv("XDG_STATE_HOME");
  // The XDG spec says relative values are invalid and must be ignored.
  if (state != nullptr && *state != '\0' && fs::path(state).is_absolute()) {
    base = state;
  } else {
    const char* home = std::getenv("HOME");
    std::string home_dir = home != nullptr ? home : "";
    if (home_dir.empty()) {
      passwd pw{};
      passwd* found = nullptr;
      std::array<char, 4096> buffer{};
      if (getpwuid_r(getuid(), &pw, buffer.data(), buffer.size(), &found) == 0 && found &&
          found->pw_dir) {
        home_dir = found->pw_dir;
      }
    }
    if (home_dir.empty()) {
      throw Error(ErrorCode::store,
                  "cannot find a default place for the execution store: neither XDG_STATE_HOME "
                  "nor HOME is set. Set one of them, or name the store file (--store PATH)");
    }
    base = fs::path(home_dir) / ".local" / "state";
  }
  const fs::path folder = base / "pfa";
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec || !fs::is_directory(folder)) {
    throw Error(ErrorCode::store, "cannot create the execution store folder '" + folder.string() +
                                      "' (" + ec.message() +
                                      "). Make it writable, set XDG_STATE_HOME, or name the store "
                                      "file (--store PATH)");
  }
  return folder / "pfa.db";
}

Store::Store(const fs::path& path, const StoreOptions& options) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->options = options;
  impl_->open();
}

Store::~Store() = default;
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;

const fs::path& Store::path() const { return impl_->path; }
int Store::schema_version() const { return impl_->version; }

void Store::insert(std::span<const ExecutionRecord> records, std::span<int64_t> ids) {
  if (records.empty()) return;
  if (!ids.empty() && ids.size() != records.size()) {
    throw Error(ErrorCode::invalid_argument,
                "Store::insert: ids has " + std::to_string(ids.size()) + " entries for " +
                    std::to_string(records.size()) + " records: pass one per record, or none");
  }
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  sqlite3_stmt* stmt = s.insert_execution.get();
  s.write_transaction(
      [&] {
        ResetOnExit clear{stmt};  // every row rebinds every column: clear the bindings once
        for (size_t i = 0; i < records.size(); ++i) {
          sqlite3_reset(stmt);
          Binder binder{stmt};
          for_each_column(records[i], binder);
          if (binder.rc != SQLITE_OK) s.fail("cannot bind a record", binder.rc, "");
          const int rc = sqlite3_step(stmt);
          if (is_busy(rc)) throw Busy{};
          if (rc != SQLITE_DONE) s.fail("cannot insert a record", rc, Impl::advice_for(rc));
          if (!ids.empty()) ids[i] = sqlite3_last_insert_rowid(s.db);
        }
      },
      "cannot insert records");
}

std::vector<ExecutionRecord> Store::records(const RecordQuery& q) const {
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  sqlite3_stmt* stmt = s.select_records[filter_variant(q)].get();
  return s.with_retry(
      [&] {
        std::vector<ExecutionRecord> out;
        ResetOnExit reset{stmt};
        s.bind_query(stmt, q, true);
        while (s.step_read(stmt, "cannot read records")) {
          ExecutionRecord& r = out.emplace_back();
          r.id = sqlite3_column_int64(stmt, 0);
          Reader reader{stmt, 1};
          for_each_column(r, reader);
          r.problem.struct_size = sizeof(Problem);
        }
        return out;
      },
      "cannot read records");
}

void Store::for_each_record(const RecordQuery& q,
                            const std::function<void(const ExecutionRecord&)>& visit) const {
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  sqlite3_stmt* stmt = s.select_records[filter_variant(q)].get();
  RecordQuery rest = q;  // after a busy restart: the rows not visited yet
  int64_t visited = 0;
  s.with_retry(
      [&] {
        ResetOnExit reset{stmt};
        s.bind_query(stmt, rest, true);
        ExecutionRecord r;
        while (s.step_read(stmt, "cannot read records")) {
          r.id = sqlite3_column_int64(stmt, 0);
          Reader reader{stmt, 1};
          for_each_column(r, reader);
          r.problem.struct_size = sizeof(Problem);
          rest.since_id = r.id;
          ++visited;
          if (q.limit > 0) rest.limit = q.limit - visited;
          visit(r);
          if (q.limit > 0 && rest.limit == 0) break;
        }
      },
      "cannot read records");
}

int64_t Store::count(const RecordQuery& q) const {
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  sqlite3_stmt* stmt = s.count_records[filter_variant(q)].get();
  const int64_t n = s.with_retry(
      [&] {
        ResetOnExit reset{stmt};
        s.bind_query(stmt, q, false);
        return s.step_read(stmt, "cannot count records") ? sqlite3_column_int64(stmt, 0)
                                                         : int64_t{0};
      },
      "cannot count records");
  return q.limit > 0 ? std::min(n, q.limit) : n;
}

int64_t Store::max_id() const {
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  sqlite3_stmt* stmt = s.max_id.get();
  return s.with_retry(
      [&] {
        ResetOnExit reset{stmt};
        return s.step_read(stmt, "cannot read the newest record id") ? sqlite3_column_int64(stmt, 0)
                                                                     : int64_t{0};
      },
      "cannot read the newest record id");
}

int64_t Store::save_model(const ModelRecord& model, bool make_active) {
  if (model.kind.empty()) {
    throw Error(ErrorCode::invalid_argument,
                "Store::save_model: the model has no kind: name what it predicts, e.g. \"latency\"");
  }
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  int64_t id = 0;
  s.write_transaction(
      [&] {
        if (make_active) {
          sqlite3_bind_text(s.deactivate_kind.get(), 1, model.kind.data(),
                            static_cast<int>(model.kind.size()), SQLITE_STATIC);
          s.run(s.deactivate_kind.get(), "cannot deactivate the previous model");
        }
        sqlite3_stmt* stmt = s.insert_model.get();
        sqlite3_bind_int64(stmt, 1, model.created_us != 0 ? model.created_us : now_us());
        sqlite3_bind_text(stmt, 2, model.kind.data(), static_cast<int>(model.kind.size()),
                          SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, model.model_json.data(),
                          static_cast<int>(model.model_json.size()), SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, model.metrics_json.data(),
                          static_cast<int>(model.metrics_json.size()), SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 5, model.trained_on_records);
        sqlite3_bind_int64(stmt, 6, model.max_record_id);
        sqlite3_bind_int(stmt, 7, make_active ? 1 : 0);
        s.run(stmt, "cannot save the model");
        id = sqlite3_last_insert_rowid(s.db);
      },
      "cannot save the model");
  return id;
}

void Store::activate_model(int64_t id) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  s.write_transaction(
      [&] {
        std::string kind;
        {
          sqlite3_stmt* stmt = s.model_kind.get();
          ResetOnExit reset{stmt};
          sqlite3_bind_int64(stmt, 1, id);
          if (!s.step_read(stmt, "cannot look up the model")) {
            throw Error(ErrorCode::store, s.where() + ": there is no model with id " +
                                              std::to_string(id) +
                                              ": list the models (pfa-tune) and pick one of them");
          }
          kind = column_string(stmt, 0);
        }
        sqlite3_bind_text(s.deactivate_kind.get(), 1, kind.data(), static_cast<int>(kind.size()),
                          SQLITE_STATIC);
        s.run(s.deactivate_kind.get(), "cannot deactivate the previous model");
        sqlite3_bind_int64(s.activate_id.get(), 1, id);
        s.run(s.activate_id.get(), "cannot activate the model");
      },
      "cannot activate the model");
}

std::optional<ModelRecord> Store::active_model(std::string_view kind) const {
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  sqlite3_stmt* stmt = s.select_active.get();
  return s.with_retry(
      [&]() -> std::optional<ModelRecord> {
        ResetOnExit reset{stmt};
        sqlite3_bind_text(stmt, 1, kind.data(), static_cast<int>(kind.size()), SQLITE_STATIC);
        if (!s.step_read(stmt, "cannot read the active model")) return std::nullopt;
        return read_model(stmt);
      },
      "cannot read the active model");
}

std::optional<ModelRecord> Store::model(int64_t id) const {
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  sqlite3_stmt* stmt = s.select_id.get();
  return s.with_retry(
      [&]() -> std::optional<ModelRecord> {
        ResetOnExit reset{stmt};
        sqlite3_bind_int64(stmt, 1, id);
        if (!s.step_read(stmt, "cannot read the model")) return std::nullopt;
        return read_model(stmt);
      },
      "cannot read the model");
}

std::vector<ModelRecord> Store::models(std::string_view kind) const {
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  sqlite3_stmt* stmt = s.select_kind.get();
  return s.with_retry(
      [&] {
        std::vector<ModelRecord> out;
        ResetOnExit reset{stmt};
        sqlite3_bind_text(stmt, 1, kind.data(), static_cast<int>(kind.size()), SQLITE_STATIC);
        while (s.step_read(stmt, "cannot read the models")) out.push_back(read_model(stmt));
        return out;
      },
      "cannot read the models");
}

void Store::pin(const Pin& pin) {
  if (pin.backend.empty()) {
    throw Error(ErrorCode::invalid_argument, "Store::pin: no backend named: say which one to pin");
  }
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  s.write_transaction(
      [&] {
        sqlite3_stmt* stmt = s.upsert_pin.get();
        bind_pin_key(stmt, pin.problem);
        sqlite3_bind_text(stmt, 10, pin.backend.data(), static_cast<int>(pin.backend.size()),
                          SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 11, pin.created_us != 0 ? pin.created_us : now_us());
        s.run(stmt, "cannot save the pin");
      },
      "cannot save the pin");
}

bool Store::unpin(const Problem& problem) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  int changed = 0;
  s.write_transaction(
      [&] {
        bind_pin_key(s.delete_pin.get(), problem);
        s.run(s.delete_pin.get(), "cannot remove the pin");
        changed = sqlite3_changes(s.db);
      },
      "cannot remove the pin");
  return changed > 0;
}

std::vector<Pin> Store::pins() const {
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  sqlite3_stmt* stmt = s.select_pins.get();
  return s.with_retry(
      [&] {
        std::vector<Pin> out;
        ResetOnExit reset{stmt};
        while (s.step_read(stmt, "cannot read the pins")) {
          Pin pin;
          Problem& p = pin.problem;
          p = make_problem(sqlite3_column_int64(stmt, 0), sqlite3_column_int64(stmt, 1),
                           sqlite3_column_int64(stmt, 2), sqlite3_column_int64(stmt, 3),
                           sqlite3_column_int64(stmt, 4), sqlite3_column_int64(stmt, 5),
                           static_cast<pfa_dtype>(sqlite3_column_int64(stmt, 6)),
                           sqlite3_column_int64(stmt, 7) != 0);
          p.device_type = static_cast<int32_t>(sqlite3_column_int64(stmt, 8));
          pin.backend = column_string(stmt, 9);
          pin.created_us = sqlite3_column_int64(stmt, 10);
          out.push_back(std::move(pin));
        }
        return out;
      },
      "cannot read the pins");
}

}  // namespace pfa::store

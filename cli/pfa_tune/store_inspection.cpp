#include "store_inspection.h"

#include <sqlite3.h>

#include <memory>

namespace pfa::tune {

namespace {

struct Db {
  sqlite3* db = nullptr;
  ~Db() { sqlite3_close(db); }
};

struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

// Runs `sql`, calling row(stmt) for each row; false with `error` set when SQLite refuses.
template <class F>
bool query(sqlite3* db, const char* sql, F&& row, std::string& error) {
  Stmt st;
  if (sqlite3_prepare_v2(db, sql, -1, &st.s, nullptr) != SQLITE_OK) {
    error = sqlite3_errmsg(db);
    return false;
  }
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) row(st.s);
  if (rc != SQLITE_DONE) {
    error = sqlite3_errmsg(db);
    return false;
  }
  return true;
}

std::string column_text(sqlite3_stmt* s, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
  return p ? p : "";
}

}  // namespace

StoreInspection inspect_store(const std::filesystem::path& path) {
  StoreInspection out;
  std::error_code ec;
  out.exists = std::filesystem::is_regular_file(path, ec);
  if (!out.exists) return out;
  out.bytes = std::filesystem::file_size(path, ec);
  const auto wal = std::filesystem::path(path.string() + "-wal");
  if (std::filesystem::exists(wal, ec)) out.bytes += std::filesystem::file_size(wal, ec);

  Db db;
  if (sqlite3_open_v2(path.c_str(), &db.db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    out.open_error = db.db ? sqlite3_errmsg(db.db) : "cannot open";
    return out;
  }
  sqlite3_busy_timeout(db.db, 5000);
  std::string error;
  if (!query(db.db, "PRAGMA user_version",
             [&](sqlite3_stmt* s) { out.schema_version = sqlite3_column_int64(s, 0); }, error)) {
    out.open_error = error;
    return out;
  }
  int64_t tables = 0;
  query(db.db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        [&](sqlite3_stmt* s) { tables = sqlite3_column_int64(s, 0); }, error);
  out.pfa_store = out.schema_version >= 1 || tables == 0;
  std::string findings;
  if (!query(db.db, "PRAGMA integrity_check(20)",
             [&](sqlite3_stmt* s) {
               if (!findings.empty()) findings += "; ";
               findings += column_text(s, 0);
             },
             error)) {
    findings = error;
  }
  out.integrity = findings;
  if (out.schema_version < 1) return out;
  query(db.db, "SELECT count(*), coalesce(sum(ok = 0), 0), coalesce(max(id), 0) FROM executions",
        [&](sqlite3_stmt* s) {
          out.records = sqlite3_column_int64(s, 0);
          out.failed_records = sqlite3_column_int64(s, 1);
          out.max_record_id = sqlite3_column_int64(s, 2);
        },
        error);
  // max_record_id arrived in version 2; a version-1 file reports 0 for it.
  const char* models_sql = out.schema_version >= 2
      ? "SELECT id, kind, created_us, max_record_id, trained_on_records FROM models WHERE active "
        "ORDER BY kind"
      : "SELECT id, kind, created_us, 0, trained_on_records FROM models WHERE active ORDER BY kind";
  query(db.db, models_sql,
        [&](sqlite3_stmt* s) {
          out.active_models.push_back({sqlite3_column_int64(s, 0), column_text(s, 1),
                                       sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3),
                                       sqlite3_column_int64(s, 4)});
        },
        error);
  return out;
}

}  // namespace pfa::tune

// A read-only look at a store file that neither creates, migrates nor writes it: what `doctor`
// reports (schema version, integrity, counts, models) without the side effects of opening a Store.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace pfa::tune {

struct InspectedModel {
  int64_t id = 0;
  std::string kind;
  int64_t created_us = 0;
  int64_t max_record_id = 0;
  int64_t trained_on_records = 0;
};

struct StoreInspection {
  bool exists = false;
  uint64_t bytes = 0;            // the file plus its WAL
  std::string open_error;        // empty when SQLite could read it
  int64_t schema_version = -1;
  bool pfa_store = false;        // version >= 1, or an empty file
  std::string integrity;         // "ok" or SQLite's first findings
  int64_t records = 0;
  int64_t failed_records = 0;
  int64_t max_record_id = 0;
  std::vector<InspectedModel> active_models;
};

StoreInspection inspect_store(const std::filesystem::path& path);

}  // namespace pfa::tune

// The portable tuning database: execution records as JSON lines that travel between machines.
//
// Line 1 is a header: {"format": "pfa-tuning-db", "version": 1, "records": N, "fingerprints": [...]}
// naming every device fingerprint (device name, detail and class) in the file and how many records
// each has. Then N lines, one record each, grouped by fingerprint, each with "hash": the content
// hash of the record (every field but the store's id and the record's source), which import and
// merge dedupe on and which catches a damaged line. A file whose header, count, lines or hashes
// do not check out is refused whole.
#pragma once

#include <pfa/store/execution_record.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace pfa::tune {

inline constexpr const char* kTuningFileFormat = "pfa-tuning-db";
inline constexpr int kTuningFileVersion = 1;

nlohmann::json record_to_json(const store::ExecutionRecord& record);
// Throws pfa::Error(invalid_argument) naming the field that is missing, mistyped or out of range.
store::ExecutionRecord record_from_json(const nlohmann::json& json);

// 16 hex digits; the same for the same measurement on every machine and after any round trip.
std::string content_hash(const store::ExecutionRecord& record);

// The records of a tuning file, fully validated. Throws pfa::Error(invalid_argument) naming the
// file and line on any problem (missing file, other format, newer version, truncation, a bad
// record or hash).
std::vector<store::ExecutionRecord> read_tuning_file(const std::filesystem::path& path);

// Writes the records (grouped by fingerprint) to a temporary file beside `path`, then renames it
// over `path`, so a reader never sees half a file. Throws pfa::Error(io).
void write_tuning_file(const std::filesystem::path& path,
                       const std::vector<store::ExecutionRecord>& records);

}  // namespace pfa::tune

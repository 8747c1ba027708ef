// The store's SQLite schema and its history. The schema version lives in PRAGMA user_version.
//
// A fresh file is created with the version-1 script and then migrated forward step by step, so every
// store ever created went through the same path and the migrations are exercised on every new file.
//
// Current schema (version 4):
//   executions  one row per ExecutionRecord: id, timestamp_us, the problem's fields (batch, heads_q,
//               heads_kv, seqlen_q, seqlen_k, head_dim, dtype, layout, causal, want_lse,
//               softmax_scale, device_type, device_id), backend, backend_version, the device
//               fingerprint (device_name, device_detail, device_class), the outcome (latency_s,
//               energy_j, energy_measured, rel_error, error_estimate, ok, failure, status, wall_s,
//               detail), explored, simulated, approximate, source, pfa_version, ranks (devices
//               a split problem spans; 1 otherwise).
//               Enums are stored as their integer codes (pfa_dtype, pfa_layout, DLDeviceType,
//               pfa_status, RecordSource); REAL columns hold NULL where a value was NaN.
//   models      id, created_us, kind, model_json, metrics_json, trained_on_records, max_record_id,
//               active (at most one active model per kind).
//   pins        operator overrides: the shape's key fields (batch, heads_q, heads_kv, seqlen_q,
//               seqlen_k, head_dim, dtype, causal, device_type; unique together), backend,
//               created_us.
#pragma once

#include <string_view>

namespace pfa::store {

inline constexpr int kSchemaVersion = 4;

// The version-1 schema as it was first released. Kept verbatim: migrations start from it.
std::string_view schema_v1_script() noexcept;

// The script that takes a store from `version - 1` to `version` (2 <= version <= kSchemaVersion).
std::string_view migration_script(int version) noexcept;

}  // namespace pfa::store

#include <pfa/store/schema.h>

namespace pfa::store {

namespace {

// Version 1, as first released. Never edit: old files were made by it; change the schema with a
// new migration instead.
//
// Ids are plain rowids (no AUTOINCREMENT, which costs a second B-tree update per row): the store
// never deletes, so an id is never handed out twice and ids grow with insertion order. Only the
// backend filter has an index: "ok only" keeps nearly every row, so a scan by id serves it.
constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE executions (
  id              INTEGER PRIMARY KEY,
  timestamp_us    INTEGER NOT NULL,
  batch           INTEGER NOT NULL,
  heads_q         INTEGER NOT NULL,
  heads_kv        INTEGER NOT NULL,
  seqlen_q        INTEGER NOT NULL,
  seqlen_k        INTEGER NOT NULL,
  head_dim        INTEGER NOT NULL,
  dtype           INTEGER NOT NULL,
  layout          INTEGER NOT NULL,
  causal          INTEGER NOT NULL,
  want_lse        INTEGER NOT NULL,
  softmax_scale   REAL,
  device_type     INTEGER NOT NULL,
  device_id       INTEGER NOT NULL,
  backend         TEXT NOT NULL,
  backend_version TEXT NOT NULL,
  device_name     TEXT NOT NULL,
  device_detail   TEXT NOT NULL,
  device_class    TEXT NOT NULL,
  latency_s       REAL,
  energy_j        REAL,
  energy_measured INTEGER NOT NULL,
  rel_error       REAL,
  error_estimate  REAL,
  ok              INTEGER NOT NULL,
  failure         TEXT NOT NULL,
  explored        INTEGER NOT NULL,
  simulated       INTEGER NOT NULL,
  source          INTEGER NOT NULL,
  pfa_version     TEXT NOT NULL
);
CREATE INDEX executions_backend ON executions(backend, id);
CREATE TABLE models (
  id                 INTEGER PRIMARY KEY,
  created_us         INTEGER NOT NULL,
  kind               TEXT NOT NULL,
  model_json         TEXT NOT NULL,
  trained_on_records INTEGER NOT NULL,
  active             INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX models_kind ON models(kind, active);
PRAGMA user_version = 1;
)sql";

// Version 2: the run's status code, wall time, backend path and approximate flag; model metrics
// and the newest record a model saw; at most one active model per kind.
constexpr std::string_view kMigrationTo2 = R"sql(
ALTER TABLE executions ADD COLUMN status INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN approximate INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN wall_s REAL;
ALTER TABLE executions ADD COLUMN detail TEXT NOT NULL DEFAULT '';
-- Version-1 rows knew only ok or not: a failure becomes PFA_STATUS_INTERNAL (6). Their latency is
-- the wall time unless the backend was simulated; a backend that expected an error is approximate.
UPDATE executions SET
  status = CASE WHEN ok THEN 0 ELSE 6 END,
  wall_s = CASE WHEN simulated THEN NULL ELSE latency_s END,
  approximate = coalesce(error_estimate, 0) > 0;
ALTER TABLE models ADD COLUMN metrics_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE models ADD COLUMN max_record_id INTEGER NOT NULL DEFAULT 0;
-- Version 1 did not enforce one active model per kind: the newest active one stays active.
UPDATE models SET active = 0
  WHERE active AND id NOT IN (SELECT max(id) FROM models WHERE active GROUP BY kind);
DROP INDEX models_kind;
CREATE UNIQUE INDEX models_one_active ON models(kind) WHERE active;
CREATE INDEX models_kind ON models(kind, id);
PRAGMA user_version = 2;
)sql";

// Version 3: operator pins, one per problem shape (the fields a pin matches on).
constexpr std::string_view kMigrationTo3 = R"sql(
CREATE TABLE pins (
  batch       INTEGER NOT NULL,
  heads_q     INTEGER NOT NULL,
  heads_kv    INTEGER NOT NULL,
  seqlen_q    INTEGER NOT NULL,
  seqlen_k    INTEGER NOT NULL,
  head_dim    INTEGER NOT NULL,
  dtype       INTEGER NOT NULL,
  causal      INTEGER NOT NULL,
  device_type INTEGER NOT NULL,
  backend     TEXT NOT NULL,
  created_us  INTEGER NOT NULL,
  PRIMARY KEY (batch, heads_q, heads_kv, seqlen_q, seqlen_k, head_dim, dtype, causal, device_type)
);
PRAGMA user_version = 3;
)sql";

// Version 4: the rank count of problems split over several devices (1 for every older row).
constexpr std::string_view kMigrationTo4 = R"sql(
ALTER TABLE executions ADD COLUMN ranks INTEGER NOT NULL DEFAULT 1;
PRAGMA user_version = 4;
)sql";

}  // namespace

std::string_view schema_v1_script() noexcept { return kSchemaV1; }

std::string_view migration_script(int version) noexcept {
  switch (version) {
    case 2: return kMigrationTo2;
    case 3: return kMigrationTo3;
    case 4: return kMigrationTo4;
    default: return {};
  }
}

}  // namespace pfa::store

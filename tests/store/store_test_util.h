// Helpers for the store tests: a fresh temporary folder and random execution records.
#pragma once

#include <pfa/store/execution_record.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>
#include <string>

namespace pfa::store::testing {

// A new, empty folder under the system temp folder, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "pfa-store-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline uint64_t fresh_seed() { return (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}(); }

template <size_t N>
void random_text(Text<N>& field, std::mt19937_64& rng) {
  // Any byte but NUL, including invalid UTF-8: a plugin's message may hold anything.
  std::uniform_int_distribution<size_t> length(0, N - 1);
  std::uniform_int_distribution<int> byte(1, 255);
  std::string s(length(rng), ' ');
  for (char& c : s) c = static_cast<char>(byte(rng));
  set_text(field, s);
}

inline double random_double(std::mt19937_64& rng) {
  std::uniform_int_distribution<int> pick(0, 9);
  switch (pick(rng)) {
    case 0: return std::numeric_limits<double>::quiet_NaN();
    case 1: return std::numeric_limits<double>::infinity();
    case 2: return -std::numeric_limits<double>::infinity();
    case 3: return std::numeric_limits<double>::denorm_min();
    case 4: return -std::numeric_limits<double>::max();
    default: return std::ldexp(std::uniform_real_distribution<double>(-1, 1)(rng),
                               std::uniform_int_distribution<int>(-60, 60)(rng));
  }
}

inline ExecutionRecord random_record(std::mt19937_64& rng) {
  std::uniform_int_distribution<int64_t> i64(std::numeric_limits<int64_t>::min(),
                                             std::numeric_limits<int64_t>::max());
  std::uniform_int_distribution<int32_t> i32(std::numeric_limits<int32_t>::min(),
                                             std::numeric_limits<int32_t>::max());
  std::bernoulli_distribution coin;
  ExecutionRecord r;
  r.timestamp_us = i64(rng);
  r.problem.struct_size = sizeof(Problem);
  r.problem.batch = i64(rng);
  r.problem.heads_q = i64(rng);
  r.problem.heads_kv = i64(rng);
  r.problem.seqlen_q = i64(rng);
  r.problem.seqlen_k = i64(rng);
  r.problem.head_dim = i64(rng);
  r.problem.dtype = i32(rng);
  r.problem.layout = i32(rng);
  r.problem.causal = i32(rng);
  r.problem.want_lse = i32(rng);
  r.problem.softmax_scale = static_cast<float>(random_double(rng));
  r.problem.device_type = i32(rng);
  r.problem.device_id = i32(rng);
  random_text(r.backend, rng);
  random_text(r.backend_version, rng);
  random_text(r.device_name, rng);
  random_text(r.device_detail, rng);
  random_text(r.device_class, rng);
  r.latency_s = random_double(rng);
  r.energy_j = random_double(rng);
  r.energy_measured = coin(rng);
  r.rel_error = random_double(rng);
  r.error_estimate = random_double(rng);
  r.ok = coin(rng);
  random_text(r.failure, rng);
  r.explored = coin(rng);
  r.simulated = coin(rng);
  r.source = static_cast<RecordSource>(std::uniform_int_distribution<int>(0, 3)(rng));
  random_text(r.pfa_version, rng);
  r.status = i32(rng);
  r.approximate = coin(rng);
  r.wall_s = random_double(rng);
  random_text(r.detail, rng);
  return r;
}

// A plausible record, cheap to make in bulk: `tag` and `seq` land in batch and seqlen_q.
inline ExecutionRecord simple_record(int64_t tag, int64_t seq, const char* backend = "cpu_flash") {
  ExecutionRecord r;
  r.timestamp_us = 1700000000000000 + seq;
  r.problem.struct_size = sizeof(Problem);
  r.problem.batch = tag;
  r.problem.heads_q = 8;
  r.problem.heads_kv = 8;
  r.problem.seqlen_q = seq;
  r.problem.seqlen_k = seq;
  r.problem.head_dim = 64;
  r.problem.softmax_scale = 0.125f;
  set_text(r.backend, backend);
  set_text(r.backend_version, "1.0");
  set_text(r.device_name, "test cpu");
  set_text(r.device_class, "cpu");
  r.latency_s = 1e-4 * static_cast<double>(seq % 97 + 1);
  r.wall_s = r.latency_s;
  r.ok = seq % 5 != 0;
  set_text(r.pfa_version, "0.1.0");
  return r;
}

// Doubles equal exactly, where every NaN equals every NaN (SQLite keeps no NaN payload) and -0.0
// equals 0.0 (SQLite stores integral REALs as integers).
inline bool same_double(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

inline void expect_same_record(const ExecutionRecord& a, const ExecutionRecord& b) {
  EXPECT_EQ(a.timestamp_us, b.timestamp_us);
  EXPECT_EQ(a.problem.batch, b.problem.batch);
  EXPECT_EQ(a.problem.heads_q, b.problem.heads_q);
  EXPECT_EQ(a.problem.heads_kv, b.problem.heads_kv);
  EXPECT_EQ(a.problem.seqlen_q, b.problem.seqlen_q);
  EXPECT_EQ(a.problem.seqlen_k, b.problem.seqlen_k);
  EXPECT_EQ(a.problem.head_dim, b.problem.head_dim);
  EXPECT_EQ(a.problem.dtype, b.problem.dtype);
  EXPECT_EQ(a.problem.layout, b.problem.layout);
  EXPECT_EQ(a.problem.causal, b.problem.causal);
  EXPECT_EQ(a.problem.want_lse, b.problem.want_lse);
  EXPECT_TRUE(same_double(a.problem.softmax_scale, b.problem.softmax_scale))
      << a.problem.softmax_scale << " vs " << b.problem.softmax_scale;
  EXPECT_EQ(a.problem.device_type, b.problem.device_type);
  EXPECT_EQ(a.problem.device_id, b.problem.device_id);
  EXPECT_EQ(text(a.backend), text(b.backend));
  EXPECT_EQ(text(a.backend_version), text(b.backend_version));
  EXPECT_EQ(text(a.device_name), text(b.device_name));
  EXPECT_EQ(text(a.device_detail), text(b.device_detail));
  EXPECT_EQ(text(a.device_class), text(b.device_class));
  EXPECT_TRUE(same_double(a.latency_s, b.latency_s)) << a.latency_s << " vs " << b.latency_s;
  EXPECT_TRUE(same_double(a.energy_j, b.energy_j)) << a.energy_j << " vs " << b.energy_j;
  EXPECT_EQ(a.energy_measured, b.energy_measured);
  EXPECT_TRUE(same_double(a.rel_error, b.rel_error)) << a.rel_error << " vs " << b.rel_error;
  EXPECT_TRUE(same_double(a.error_estimate, b.error_estimate));
  EXPECT_EQ(a.ok, b.ok);
  EXPECT_EQ(text(a.failure), text(b.failure));
  EXPECT_EQ(a.explored, b.explored);
  EXPECT_EQ(a.simulated, b.simulated);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(text(a.pfa_version), text(b.pfa_version));
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.approximate, b.approximate);
  EXPECT_TRUE(same_double(a.wall_s, b.wall_s)) << a.wall_s << " vs " << b.wall_s;
  EXPECT_EQ(text(a.detail), text(b.detail));
}

}  // namespace pfa::store::testing

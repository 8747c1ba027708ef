// One execution as the store keeps it: the problem's features, the backend and device that ran it,
// and the outcome. Fixed-size fields so that building and enqueueing a record allocates nothing.
#pragma once

#include <pfa/problem.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace pfa::store {

template <size_t N>
using Text = std::array<char, N>;

template <size_t N>
inline void set_text(Text<N>& field, std::string_view value) noexcept {
  const size_t n = std::min(value.size(), N - 1);
  std::memcpy(field.data(), value.data(), n);
  field[n] = '\0';
}

template <size_t N>
inline std::string_view text(const Text<N>& field) noexcept {
  return std::string_view(field.data(), strnlen(field.data(), N));
}

enum class RecordSource : int32_t { engine = 0, bench = 1, evaluate = 2, imported = 3 };

struct ExecutionRecord {
  int64_t id = 0;               // assigned by the store
  int64_t timestamp_us = 0;     // wall clock, microseconds since the Unix epoch
  Problem problem{};            // every problem feature
  Text<48> backend{};           // plugin name
  Text<32> backend_version{};
  Text<128> device_name{};      // GPU name or CPU model
  Text<256> device_detail{};    // compute capability, driver and library versions, ISA, threads
  Text<32> device_class{};      // coarse routing feature: "cpu", "cuda:sm90", ...
  double latency_s = 0;         // measured wall time (simulated backends: the modelled latency)
  double energy_j = -1;         // < 0 when unknown
  bool energy_measured = false; // false when energy_j is modelled
  double rel_error = -1;        // measured relative error against a reference, < 0 if not measured
  double error_estimate = 0;    // the backend's own expected relative error
  bool ok = true;
  Text<256> failure{};          // status and reason when !ok
  bool explored = false;        // the router picked it to measure it
  bool simulated = false;       // cost figures are modelled
  RecordSource source = RecordSource::engine;
  Text<16> pfa_version{};
  // Appended after the first version of this struct; keep new fields at the end.
  int32_t status = 0;           // pfa_status of the run (0 = ok)
  bool approximate = false;     // the backend is approximate by design
  double wall_s = 0;            // host-measured wall time, also for simulated backends
  Text<64> detail{};            // the backend's word on which internal path ran ("avx512", "sm90a")
};

const char* source_name(RecordSource source) noexcept;  // "engine", "bench", "evaluate", "imported"

}  // namespace pfa::store

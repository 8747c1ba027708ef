#include "tuning_file.h"

#include <pfa/error.h>
#include <pfa/problem.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <tuple>

namespace pfa::tune {

namespace {

constexpr auto kReplace = nlohmann::json::error_handler_t::replace;

nlohmann::json real(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

Error bad(const std::string& what) { return Error(ErrorCode::invalid_argument, what); }

const nlohmann::json& field(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end()) throw bad(fmt::format("the record has no '{}'", key));
  return *it;
}

int64_t integer(const nlohmann::json& j, const char* key, int64_t lo, int64_t hi) {
  const auto& v = field(j, key);
  if (!v.is_number_integer()) throw bad(fmt::format("'{}' is not an integer", key));
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) throw bad(fmt::format("'{}' = {} is outside {}..{}", key, x, lo, hi));
  return x;
}

double number(const nlohmann::json& j, const char* key) {
  const auto& v = field(j, key);
  if (v.is_null()) return std::nan("");
  if (!v.is_number()) throw bad(fmt::format("'{}' is not a number", key));
  return v.get<double>();
}

bool boolean(const nlohmann::json& j, const char* key) {
  const auto& v = field(j, key);
  if (!v.is_boolean()) throw bad(fmt::format("'{}' is not true or false", key));
  return v.get<bool>();
}

template <size_t N>
void text_field(const nlohmann::json& j, const char* key, store::Text<N>& out, bool required) {
  const auto& v = field(j, key);
  if (!v.is_string()) throw bad(fmt::format("'{}' is not a string", key));
  const auto s = v.get<std::string>();
  if (s.size() >= N) throw bad(fmt::format("'{}' is longer than {} bytes", key, N - 1));
  if (s.find('\0') != std::string::npos) throw bad(fmt::format("'{}' holds a NUL byte", key));
  if (required && s.empty()) throw bad(fmt::format("'{}' is empty", key));
  store::set_text(out, s);
}

using Fingerprint = std::tuple<std::string, std::string, std::string>;

Fingerprint fingerprint_of(const store::ExecutionRecord& r) {
  return {std::string(store::text(r.device_name)), std::string(store::text(r.device_detail)),
          std::string(store::text(r.device_class))};
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

}  // namespace

nlohmann::json record_to_json(const store::ExecutionRecord& r) {
  const Problem& p = r.problem;
  nlohmann::json j = {{"timestamp_us", r.timestamp_us},
                      {"batch", p.batch},
                      {"heads_q", p.heads_q},
                      {"heads_kv", p.heads_kv},
                      {"seqlen_q", p.seqlen_q},
                      {"seqlen_k", p.seqlen_k},
                      {"head_dim", p.head_dim},
                      {"dtype", p.dtype},
                      {"layout", p.layout},
                      {"causal", p.causal},
                      {"want_lse", p.want_lse},
                      {"softmax_scale", real(p.softmax_scale)},
                      {"device_type", p.device_type},
                      {"device_id", p.device_id},
                      {"backend", store::text(r.backend)},
                      {"backend_version", store::text(r.backend_version)},
                      {"device_name", store::text(r.device_name)},
                      {"device_detail", store::text(r.device_detail)},
                      {"device_class", store::text(r.device_class)},
                      {"latency_s", real(r.latency_s)},
                      {"energy_j", real(r.energy_j)},
                      {"energy_measured", r.energy_measured},
                      {"rel_error", real(r.rel_error)},
                      {"error_estimate", real(r.error_estimate)},
                      {"ok", r.ok},
                      {"failure", store::text(r.failure)},
                      {"explored", r.explored},
                      {"simulated", r.simulated},
                      {"source", store::source_name(r.source)},
                      {"pfa_version", store::text(r.pfa_version)},
                      {"status", r.status},
                      {"approximate", r.approximate},
                      {"wall_s", real(r.wall_s)},
                      {"detail", store::text(r.detail)}};
  // Only split problems carry "ranks": a one-device record reads, and hashes, exactly as files
  // written before split problems existed.
  if (ranks_of(p) > 1) j["ranks"] = ranks_of(p);
  return j;
}

store::ExecutionRecord record_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw bad("the line is not a JSON object");
  constexpr int64_t kBig = int64_t{1} << 40;
  store::ExecutionRecord r;
  r.timestamp_us = integer(j, "timestamp_us", 0, INT64_MAX);
  Problem& p = r.problem;
  p.struct_size = sizeof(Problem);
  p.batch = integer(j, "batch", 1, kBig);
  p.heads_q = integer(j, "heads_q", 1, kBig);
  p.heads_kv = integer(j, "heads_kv", 1, kBig);
  p.seqlen_q = integer(j, "seqlen_q", 1, kBig);
  p.seqlen_k = integer(j, "seqlen_k", 1, kBig);
  p.head_dim = integer(j, "head_dim", 1, kBig);
  p.dtype = static_cast<int32_t>(integer(j, "dtype", PFA_DTYPE_FP32, PFA_DTYPE_BF16));
  p.layout = static_cast<int32_t>(integer(j, "layout", PFA_LAYOUT_BSHD, PFA_LAYOUT_STRIDED));
  p.causal = static_cast<int32_t>(integer(j, "causal", 0, 1));
  p.want_lse = static_cast<int32_t>(integer(j, "want_lse", 0, 1));
  p.softmax_scale = static_cast<float>(number(j, "softmax_scale"));
  p.device_type = static_cast<int32_t>(integer(j, "device_type", 0, 1 << 16));
  p.device_id = static_cast<int32_t>(integer(j, "device_id", 0, 1 << 16));
  // Files written before split problems existed have no "ranks": one device.
  p.ranks = j.contains("ranks") ? static_cast<int32_t>(integer(j, "ranks", 1, 4096)) : 1;
  if (p.heads_q % p.heads_kv != 0) throw bad("'heads_q' is not a multiple of 'heads_kv'");
  text_field(j, "backend", r.backend, true);
  text_field(j, "backend_version", r.backend_version, false);
  text_field(j, "device_name", r.device_name, true);
  text_field(j, "device_detail", r.device_detail, false);
  text_field(j, "device_class", r.device_class, true);
  r.latency_s = number(j, "latency_s");
  r.energy_j = number(j, "energy_j");
  r.energy_measured = boolean(j, "energy_measured");
  r.rel_error = number(j, "rel_error");
  r.error_estimate = number(j, "error_estimate");
  r.ok = boolean(j, "ok");
  text_field(j, "failure", r.failure, false);
  r.explored = boolean(j, "explored");
  r.simulated = boolean(j, "simulated");
  const auto& source = field(j, "source");
  bool known = false;
  for (auto s : {store::RecordSource::engine, store::RecordSource::bench,
                 store::RecordSource::evaluate, store::RecordSource::imported}) {
    if (source.is_string() && source.get<std::string>() == store::source_name(s)) {
      r.source = s;
      known = true;
    }
  }
  if (!known) throw bad("'source' is not one of engine, bench, evaluate, imported");
  text_field(j, "pfa_version", r.pfa_version, false);
  r.status = static_cast<int32_t>(integer(j, "status", 0, 1 << 16));
  r.approximate = boolean(j, "approximate");
  r.wall_s = number(j, "wall_s");
  text_field(j, "detail", r.detail, false);
  if (r.ok && !(r.latency_s > 0)) throw bad("a successful run without a positive 'latency_s'");
  return r;
}

std::string content_hash(const store::ExecutionRecord& record) {
  auto j = record_to_json(record);
  j.erase("source");  // where a run came from does not make it another run
  return fmt::format("{:016x}", fnv1a(j.dump(-1, ' ', false, kReplace)));
}

std::vector<store::ExecutionRecord> read_tuning_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(ErrorCode::io, fmt::format("cannot read {}: no such file or no permission",
                                           path.string()));
  }
  const auto where = [&](size_t line) { return fmt::format("{} line {}", path.string(), line); };
  std::string line;
  if (!std::getline(in, line)) {
    throw bad(fmt::format("{} is empty: not a pfa tuning database (make one with `pfa-tune "
                          "export FILE`)", path.string()));
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception&) {
    throw bad(fmt::format("{} is not a pfa tuning database (its first line is no JSON header); "
                          "make one with `pfa-tune export FILE`", path.string()));
  }
  // (Not header.value("format", ...): that throws when "format" is there but no string.)
  const auto format = header.is_object() ? header.find("format") : header.end();
  if (format == header.end() || !format->is_string() ||
      format->get<std::string>() != kTuningFileFormat) {
    throw bad(fmt::format("{} is not a pfa tuning database (its header does not say format "
                          "\"{}\")", path.string(), kTuningFileFormat));
  }
  const auto version = header.find("version");
  if (version == header.end() || !version->is_number_integer()) {
    throw bad(fmt::format("{}: the header has no version", where(1)));
  }
  if (version->get<int64_t>() > kTuningFileVersion) {
    throw bad(fmt::format("{} is version {} of the format, newer than this pfa reads ({}): "
                          "use a newer pfa", path.string(), version->get<int64_t>(),
                          kTuningFileVersion));
  }
  const auto count = header.find("records");
  if (count == header.end() || !count->is_number_unsigned()) {
    throw bad(fmt::format("{}: the header does not say how many records follow", where(1)));
  }
  const auto expected = count->get<uint64_t>();
  std::vector<store::ExecutionRecord> out;
  size_t n = 1;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    if (out.size() == expected) {
      throw bad(fmt::format("{}: more records than the header's {}", where(n), expected));
    }
    try {
      const auto j = nlohmann::json::parse(line);
      store::ExecutionRecord r = record_from_json(j);
      const auto hash = j.find("hash");
      if (hash == j.end() || !hash->is_string() || hash->get<std::string>() != content_hash(r)) {
        throw bad("its hash does not match its content (the line was changed or damaged)");
      }
      out.push_back(r);
    } catch (const nlohmann::json::exception&) {
      throw bad(fmt::format("{}: not a complete JSON record (is the file truncated?)", where(n)));
    } catch (const Error& e) {
      throw bad(fmt::format("{}: {}", where(n), e.what()));
    }
  }
  if (out.size() != expected) {
    throw bad(fmt::format("{} holds {} records but its header says {}: the file is truncated; "
                          "export it again", path.string(), out.size(), expected));
  }
  return out;
}

void write_tuning_file(const std::filesystem::path& path,
                       const std::vector<store::ExecutionRecord>& records) {
  // Grouped by fingerprint, then in time order: the file reads as one block per device.
  std::vector<const store::ExecutionRecord*> order;
  std::map<Fingerprint, size_t> counts;
  for (const auto& r : records) {
    order.push_back(&r);
    ++counts[fingerprint_of(r)];
  }
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return fingerprint_of(*a) < fingerprint_of(*b);
  });
  nlohmann::json fingerprints = nlohmann::json::array();
  for (const auto& [f, n] : counts) {
    fingerprints.push_back({{"device_name", std::get<0>(f)},
                            {"device_detail", std::get<1>(f)},
                            {"device_class", std::get<2>(f)},
                            {"records", n}});
  }
  // Ordered, so that the file's first words say what it is.
  const nlohmann::ordered_json header = {{"format", kTuningFileFormat},
                                 {"version", kTuningFileVersion},
                                 {"records", records.size()},
                                 {"fingerprints", fingerprints}};
  const auto tmp = std::filesystem::path(path.string() + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      throw Error(ErrorCode::io, fmt::format("cannot write {}: check the folder exists and is "
                                             "writable", tmp.string()));
    }
    out << header.dump(-1, ' ', false, kReplace) << '\n';
    for (const auto* r : order) {
      auto j = record_to_json(*r);
      j["hash"] = content_hash(*r);
      out << j.dump(-1, ' ', false, kReplace) << '\n';
    }
    out.flush();
    if (!out) throw Error(ErrorCode::io, fmt::format("writing {} failed (disk full?)", tmp.string()));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw Error(ErrorCode::io, fmt::format("cannot move the export into {}", path.string()));
  }
}

}  // namespace pfa::tune

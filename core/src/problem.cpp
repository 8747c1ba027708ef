#include <pfa/error.h>
#include <pfa/problem.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>

namespace pfa {

Problem make_problem(int64_t batch, int64_t heads_q, int64_t heads_kv, int64_t seqlen_q,
                     int64_t seqlen_k, int64_t head_dim, pfa_dtype dtype, bool causal) {
  Problem p{};
  p.struct_size = sizeof(Problem);
  p.batch = batch;
  p.heads_q = heads_q;
  p.heads_kv = heads_kv;
  p.seqlen_q = seqlen_q;
  p.seqlen_k = seqlen_k;
  p.head_dim = head_dim;
  p.dtype = dtype;
  p.layout = PFA_LAYOUT_BSHD;
  p.causal = causal ? 1 : 0;
  p.want_lse = 0;
  p.softmax_scale = head_dim > 0 ? 1.0f / std::sqrt(static_cast<float>(head_dim)) : 1.0f;
  p.device_type = kDLCPU;
  p.device_id = 0;
  p.ranks = 1;
  return p;
}

int32_t ranks_of(const Problem& problem) noexcept {
  return PFA_STRUCT_HAS(&problem, pfa_problem, ranks) && problem.ranks > 1 ? problem.ranks : 1;
}

Problem global_problem(const Problem& problem) noexcept {
  Problem g = problem;
  const int32_t n = ranks_of(problem);
  g.struct_size = sizeof(Problem);
  g.seqlen_q = problem.seqlen_q * n;
  g.seqlen_k = problem.seqlen_k * n;
  g.ranks = 1;
  return g;
}

const char* dtype_name(int32_t dtype) noexcept {
  switch (dtype) {
    case PFA_DTYPE_FP32: return "fp32";
    case PFA_DTYPE_FP16: return "fp16";
    case PFA_DTYPE_BF16: return "bf16";
  }
  return "unknown";
}

size_t dtype_size(int32_t dtype) noexcept { return dtype == PFA_DTYPE_FP32 ? 4 : 2; }

const char* layout_name(int32_t layout) noexcept {
  switch (layout) {
    case PFA_LAYOUT_BSHD: return "bshd";
    case PFA_LAYOUT_BHSD: return "bhsd";
    case PFA_LAYOUT_STRIDED: return "strided";
  }
  return "unknown";
}

const char* device_name(int32_t dl_device_type) noexcept {
  switch (dl_device_type) {
    case kDLCPU: return "cpu";
    case kDLCUDA: return "cuda";
    case kDLCUDAHost: return "cuda_host";
    case kDLROCM: return "rocm";
    default: return "other";
  }
}

pfa_dtype parse_dtype(std::string_view text) {
  if (text == "fp32" || text == "float32" || text == "float") return PFA_DTYPE_FP32;
  if (text == "fp16" || text == "float16" || text == "half") return PFA_DTYPE_FP16;
  if (text == "bf16" || text == "bfloat16") return PFA_DTYPE_BF16;
  throw Error(ErrorCode::invalid_argument,
              fmt::format("unknown dtype '{}': use fp32, fp16 or bf16", text));
}

namespace {

int64_t parse_int(std::string_view key, std::string_view value) {
  int64_t out = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc() || end != value.data() + value.size()) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("shape field '{}' needs an integer, got '{}'", key, value));
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

Problem parse_problem(std::string_view text) {
  Problem p = make_problem(0, 0, 0, 0, 0, 0, PFA_DTYPE_FP32, false);
  bool have_kv_heads = false, have_seqlen_k = false, have_scale = false;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("shape item '{}' is not key=value", item));
    }
    const std::string_view key = trim(item.substr(0, eq));
    const std::string_view value = trim(item.substr(eq + 1));
    if (key == "batch") p.batch = parse_int(key, value);
    else if (key == "heads_q" || key == "heads") p.heads_q = parse_int(key, value);
    else if (key == "heads_kv") { p.heads_kv = parse_int(key, value); have_kv_heads = true; }
    else if (key == "seqlen_q" || key == "seqlen") p.seqlen_q = parse_int(key, value);
    else if (key == "seqlen_k") { p.seqlen_k = parse_int(key, value); have_seqlen_k = true; }
    else if (key == "head_dim") p.head_dim = parse_int(key, value);
    else if (key == "dtype") p.dtype = parse_dtype(value);
    else if (key == "causal") p.causal = parse_int(key, value) != 0;
    else if (key == "lse") p.want_lse = parse_int(key, value) != 0;
    else if (key == "ranks") {
      const int64_t n = parse_int(key, value);
      if (n < 1 || n > 4096) {
        throw Error(ErrorCode::invalid_argument,
                    fmt::format("shape field 'ranks' must be between 1 and 4096 (got {})", n));
      }
      p.ranks = static_cast<int32_t>(n);
    }
    else if (key == "scale") {
      float scale = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), scale);
      if (ec != std::errc() || end != value.data() + value.size() || !std::isfinite(scale)) {
        throw Error(ErrorCode::invalid_argument,
                    fmt::format("shape field 'scale' needs a finite number, got '{}'", value));
      }
      p.softmax_scale = scale;
      have_scale = true;
    } else if (key == "device") {
      if (value == "cpu") p.device_type = kDLCPU;
      else if (value == "cuda" || value == "gpu") p.device_type = kDLCUDA;
      else throw Error(ErrorCode::invalid_argument,
                       fmt::format("unknown device '{}': use cpu or cuda", value));
    } else if (key == "layout") {
      if (value == "bshd") p.layout = PFA_LAYOUT_BSHD;
      else if (value == "bhsd") p.layout = PFA_LAYOUT_BHSD;
      else if (value == "strided") p.layout = PFA_LAYOUT_STRIDED;
      else throw Error(ErrorCode::invalid_argument,
                       fmt::format("unknown layout '{}': use bshd, bhsd or strided", value));
    } else {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("unknown shape field '{}' (known: batch, heads_q, heads_kv, "
                              "seqlen_q, seqlen_k, head_dim, dtype, causal, device, layout, lse, "
                              "scale, ranks)", key));
    }
  }
  if (!have_kv_heads) p.heads_kv = p.heads_q;
  if (!have_seqlen_k) p.seqlen_k = p.seqlen_q;
  const std::pair<const char*, int64_t> required[] = {
      {"batch", p.batch}, {"heads_q", p.heads_q}, {"heads_kv", p.heads_kv},
      {"seqlen_q", p.seqlen_q}, {"seqlen_k", p.seqlen_k}, {"head_dim", p.head_dim}};
  for (const auto& [name, value] : required) {
    if (value <= 0) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("shape field '{}' must be a positive integer (got {})", name, value));
    }
  }
  if (p.heads_q % p.heads_kv != 0) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("heads_q ({}) must be a multiple of heads_kv ({})", p.heads_q,
                            p.heads_kv));
  }
  if (!have_scale) p.softmax_scale = 1.0f / std::sqrt(static_cast<float>(p.head_dim));
  return p;
}

std::string to_string(const Problem& p) {
  std::string text = fmt::format(
      "batch={},heads_q={},heads_kv={},seqlen_q={},seqlen_k={},head_dim={},dtype={},causal={},"
      "device={},layout={}",
      p.batch, p.heads_q, p.heads_kv, p.seqlen_q, p.seqlen_k, p.head_dim, dtype_name(p.dtype),
      p.causal, device_name(p.device_type), layout_name(p.layout));
  if (ranks_of(p) > 1) text += fmt::format(",ranks={}", p.ranks);
  return text;
}

double visible_pairs(const Problem& p) noexcept {
  // A split problem: this rank's share of the whole sequence's pairs. The mirrored causal chunks
  // give every rank exactly the same share (pfa/sequence_sharding.h).
  if (const int32_t n = ranks_of(p); n > 1) return visible_pairs(global_problem(p)) / n;
  const double lq = static_cast<double>(p.seqlen_q), lk = static_cast<double>(p.seqlen_k);
  if (!p.causal) return lq * lk;
  // Row i sees max(0, i + s) keys with s = lk - lq + 1 (never more than lk, since i < lq).
  const double s = lk - lq + 1.0;
  const double first = std::max(0.0, 1.0 - s);  // first row that sees any key
  const double rows = lq - first;
  if (rows <= 0) return 0.0;
  return rows * s + (first + lq - 1.0) * rows / 2.0;
}

double attention_flops(const Problem& p) noexcept {
  return 4.0 * static_cast<double>(p.batch) * static_cast<double>(p.heads_q) *
         static_cast<double>(p.head_dim) * visible_pairs(p);
}

}  // namespace pfa

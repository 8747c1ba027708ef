#include <pfa/learner/features.h>
#include <pfa/router.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace pfa::learner {

namespace {

constexpr const char* kShapeNames[kShapeFeatures] = {
    "log2_batch",    "log2_heads_q", "log2_heads_kv", "log2_gqa_ratio", "log2_seqlen_q",
    "log2_seqlen_k", "log2_head_dim", "log2_flops",   "log2_bytes",     "dtype",
    "causal",        "want_lse",      "layout",       "device_type",    "log2_ranks"};

float log2_of(double value) noexcept { return static_cast<float>(std::log2(std::max(value, 1.0))); }

// FNV-1a over 64-bit words: fixed, so hashes agree across processes, builds and versions.
struct StableHash {
  uint64_t h = 1469598103934665603ull;
  void add(uint64_t word) noexcept {
    for (int i = 0; i < 8; ++i) {
      h ^= (word >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  void add(std::string_view text) noexcept {
    for (unsigned char c : text) {
      h ^= c;
      h *= 1099511628211ull;
    }
    add(text.size());
  }
};

std::string_view family(std::string_view device_class) noexcept {
  const size_t colon = device_class.find(':');
  return colon == std::string_view::npos ? device_class : device_class.substr(0, colon);
}

}  // namespace

const char* const* shape_feature_names() noexcept { return kShapeNames; }

void shape_features(const Problem& p, float* out) noexcept {
  const double heads_kv = std::max<int64_t>(p.heads_kv, 1);
  const double bytes =
      static_cast<double>(dtype_size(p.dtype)) * static_cast<double>(p.batch) *
      static_cast<double>(p.head_dim) *
      (2.0 * static_cast<double>(p.heads_q) * static_cast<double>(p.seqlen_q) +
       2.0 * heads_kv * static_cast<double>(p.seqlen_k));
  out[0] = log2_of(static_cast<double>(p.batch));
  out[1] = log2_of(static_cast<double>(p.heads_q));
  out[2] = log2_of(heads_kv);
  out[3] = log2_of(static_cast<double>(p.heads_q) / heads_kv);
  out[4] = log2_of(static_cast<double>(p.seqlen_q));
  out[5] = log2_of(static_cast<double>(p.seqlen_k));
  out[6] = log2_of(static_cast<double>(p.head_dim));
  out[7] = log2_of(attention_flops(p));
  out[8] = log2_of(bytes);
  out[9] = static_cast<float>(p.dtype);
  out[10] = static_cast<float>(p.causal != 0);
  out[11] = static_cast<float>(p.want_lse != 0);
  out[12] = static_cast<float>(p.layout);
  out[13] = static_cast<float>(p.device_type);
  out[14] = log2_of(static_cast<double>(ranks_of(p)));
}

FeatureSpace::FeatureSpace(std::vector<std::string> backends, std::vector<std::string> device_classes)
    : backends_(std::move(backends)), device_classes_(std::move(device_classes)) {}

int FeatureSpace::backend_id(std::string_view name) const noexcept {
  for (size_t i = 0; i < backends_.size(); ++i) {
    if (backends_[i] == name) return static_cast<int>(i);
  }
  return -1;
}

int FeatureSpace::device_class_id(std::string_view device_class) const noexcept {
  for (size_t i = 0; i < device_classes_.size(); ++i) {
    if (device_classes_[i] == device_class) return static_cast<int>(i);
  }
  for (size_t i = 0; i < device_classes_.size(); ++i) {
    if (family(device_classes_[i]) == family(device_class)) return static_cast<int>(i);
  }
  return -1;
}

void FeatureSpace::encode(const Problem& problem, int device_class_id, int backend_id,
                          float* row) const noexcept {
  shape_features(problem, row);
  float* device = row + kShapeFeatures;
  float* backend = device + device_classes_.size();
  std::fill(device, row + width(), 0.0f);
  if (device_class_id >= 0 && static_cast<size_t>(device_class_id) < device_classes_.size()) {
    device[device_class_id] = 1.0f;
  }
  if (backend_id >= 0 && static_cast<size_t>(backend_id) < backends_.size()) {
    backend[backend_id] = 1.0f;
  }
}

std::vector<std::string> FeatureSpace::feature_names() const {
  std::vector<std::string> names(kShapeNames, kShapeNames + kShapeFeatures);
  for (const auto& d : device_classes_) names.push_back("device=" + d);
  for (const auto& b : backends_) names.push_back("backend=" + b);
  return names;
}

double record_cost(const store::ExecutionRecord& record, Objective objective) noexcept {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  if (!record.ok || !(record.latency_s > 0) || !std::isfinite(record.latency_s)) return nan;
  pfa_estimate e{};
  e.struct_size = sizeof e;
  e.latency_s = record.latency_s;
  e.energy_j = record.energy_j;
  const double cost = objective_cost(e, objective);
  return cost > 0 && std::isfinite(cost) ? cost : nan;
}

uint64_t problem_hash(const Problem& p, std::string_view device_class) noexcept {
  StableHash h;
  for (int64_t v : {p.batch, p.heads_q, p.heads_kv, p.seqlen_q, p.seqlen_k, p.head_dim}) {
    h.add(static_cast<uint64_t>(v));
  }
  for (int32_t v : {p.dtype, p.layout, p.causal, p.want_lse, p.device_type}) {
    h.add(static_cast<uint64_t>(static_cast<uint32_t>(v)));
  }
  // Split problems hash their rank count too; one-device problems keep the hashes they always had.
  if (const int32_t n = ranks_of(p); n > 1) h.add(static_cast<uint64_t>(n) | (1ull << 63));
  h.add(device_class);
  return h.h;
}

}  // namespace pfa::learner

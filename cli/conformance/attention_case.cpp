#include "attention_case.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace pfa::conformance {

namespace {

size_t element_size(pfa_dtype dtype) { return dtype == PFA_DTYPE_FP32 ? 4 : 2; }

float half_to_float(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ffu;
  float value;
  if (exponent == 0) {
    value = std::ldexp(static_cast<float>(mantissa), -24);
  } else if (exponent == 31) {
    value = mantissa ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    value = std::ldexp(static_cast<float>(mantissa | 0x400u), exponent - 25);
  }
  return (h & 0x8000u) ? -value : value;
}

// Inputs are in [-1, 1), so only normal and subnormal halves matter; round to nearest even.
uint16_t float_to_half(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const float magnitude = std::fabs(f);
  if (std::isnan(f)) return sign | 0x7e00u;
  if (magnitude >= 65520.0f) return sign | 0x7c00u;
  if (magnitude < 6.103515625e-05f) {
    return sign | static_cast<uint16_t>(std::nearbyint(magnitude * 16777216.0f));
  }
  const uint32_t abs_bits = bits & 0x7fffffffu;
  return sign | static_cast<uint16_t>((abs_bits + 0xfffu + ((abs_bits >> 13) & 1u) - 0x38000000u) >> 13);
}

float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if (std::isnan(f)) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

void fill_poison(std::vector<unsigned char>& storage, pfa_dtype dtype) {
  if (dtype == PFA_DTYPE_FP32) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (size_t i = 0; i + 4 <= storage.size(); i += 4) std::memcpy(&storage[i], &nan, 4);
  } else {
    const uint16_t nan = 0x7fff;  // NaN in fp16 and bf16 alike
    for (size_t i = 0; i + 2 <= storage.size(); i += 2) std::memcpy(&storage[i], &nan, 2);
  }
}

}  // namespace

HostTensor::HostTensor(pfa_dtype dtype, std::vector<int64_t> shape, std::vector<int64_t> strides)
    : dtype_(dtype), shape_(std::move(shape)), strides_(std::move(strides)) {
  const size_t n = shape_.size();
  if (strides_.empty()) {
    strides_.assign(n, 1);
    for (size_t i = n; i-- > 1;) strides_[i - 1] = strides_[i] * shape_[i];
  }
  int64_t last = 0;
  for (size_t i = 0; i < n; ++i) last += (shape_[i] - 1) * strides_[i];
  storage_.assign(static_cast<size_t>(last + 1) * element_size(dtype_), 0);
  rebind();
}

HostTensor& HostTensor::operator=(HostTensor&& other) noexcept {
  dtype_ = other.dtype_;
  shape_ = std::move(other.shape_);
  strides_ = std::move(other.strides_);
  storage_ = std::move(other.storage_);
  rebind();
  return *this;
}

void HostTensor::rebind() {
  tensor_ = DLTensor{};
  tensor_.data = storage_.data();
  tensor_.device = {kDLCPU, 0};
  tensor_.ndim = static_cast<int32_t>(shape_.size());
  tensor_.dtype = dtype_ == PFA_DTYPE_FP32   ? DLDataType{kDLFloat, 32, 1}
                  : dtype_ == PFA_DTYPE_FP16 ? DLDataType{kDLFloat, 16, 1}
                                             : DLDataType{kDLBfloat, 16, 1};
  tensor_.shape = shape_.data();
  tensor_.strides = strides_.data();
}

size_t HostTensor::offset(const std::vector<int64_t>& index) const {
  int64_t off = 0;
  for (size_t i = 0; i < shape_.size(); ++i) off += index[i] * strides_[i];
  return static_cast<size_t>(off) * element_size(dtype_);
}

double HostTensor::get(const std::vector<int64_t>& index) const {
  const unsigned char* p = storage_.data() + offset(index);
  if (dtype_ == PFA_DTYPE_FP32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  return dtype_ == PFA_DTYPE_FP16 ? half_to_float(h) : bf16_to_float(h);
}

void HostTensor::set(const std::vector<int64_t>& index, double value) {
  unsigned char* p = storage_.data() + offset(index);
  const float f = static_cast<float>(value);
  if (dtype_ == PFA_DTYPE_FP32) {
    std::memcpy(p, &f, 4);
    return;
  }
  const uint16_t h = dtype_ == PFA_DTYPE_FP16 ? float_to_half(f) : float_to_bf16(f);
  std::memcpy(p, &h, 2);
}

bool next_index(std::vector<int64_t>& index, const std::vector<int64_t>& shape) {
  for (size_t i = shape.size(); i-- > 0;) {
    if (++index[i] < shape[i]) return true;
    index[i] = 0;
  }
  return false;
}

void HostTensor::fill_random(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<int64_t> index(shape_.size(), 0);
  do {
    double x = dist(rng);
    if (x == 0.0) x = 1e-3;
    set(index, x);
  } while (next_index(index, shape_));
}

void HostTensor::poison() { fill_poison(storage_, dtype_); }

int64_t HostTensor::count_non_finite() const {
  int64_t bad = 0;
  std::vector<int64_t> index(shape_.size(), 0);
  do {
    if (!std::isfinite(get(index))) ++bad;
  } while (next_index(index, shape_));
  return bad;
}

bool HostTensor::gaps_poisoned() const {
  // Poison the logical elements of a copy: what differs from an all-poison buffer was written
  // outside them.
  std::vector<unsigned char> copy = storage_;
  std::vector<unsigned char> poisoned(storage_.size());
  fill_poison(poisoned, dtype_);
  const size_t size = element_size(dtype_);
  std::vector<int64_t> index(shape_.size(), 0);
  do {
    const size_t at = offset(index);
    std::memcpy(&copy[at], &poisoned[at], size);
  } while (next_index(index, shape_));
  return copy == poisoned;
}

AttentionCase make_case(const Problem& problem, pfa_layout layout, bool padded,
                        std::mt19937_64& rng) {
  auto tensor = [&](int64_t seq, int64_t heads) {
    const Problem& p = problem;
    std::vector<int64_t> shape = layout == PFA_LAYOUT_BHSD
                                     ? std::vector<int64_t>{p.batch, heads, seq, p.head_dim}
                                     : std::vector<int64_t>{p.batch, seq, heads, p.head_dim};
    if (!padded) return HostTensor(static_cast<pfa_dtype>(p.dtype), shape);
    // Rows of head_dim + 8 and a spare row per outer block: strided, unit head_dim stride.
    std::vector<int64_t> storage = shape;
    storage[3] += 8;
    storage[2] += 1;
    std::vector<int64_t> strides(4, 1);
    for (int i = 3; i-- > 0;) strides[i] = strides[i + 1] * storage[i + 1];
    return HostTensor(static_cast<pfa_dtype>(p.dtype), shape, strides);
  };
  AttentionCase c;
  c.problem = problem;
  c.layout = layout;
  c.padded = padded;
  c.q = tensor(problem.seqlen_q, problem.heads_q);
  c.k = tensor(problem.seqlen_k, problem.heads_kv);
  c.v = tensor(problem.seqlen_k, problem.heads_kv);
  c.out = tensor(problem.seqlen_q, problem.heads_q);
  c.lse = HostTensor(PFA_DTYPE_FP32, {problem.batch, problem.heads_q, problem.seqlen_q});
  c.q.fill_random(rng);
  c.k.fill_random(rng);
  c.v.fill_random(rng);
  c.out.poison();
  c.lse.poison();
  return c;
}

namespace {

double at(const HostTensor& t, pfa_layout layout, int64_t b, int64_t s, int64_t h, int64_t d) {
  return layout == PFA_LAYOUT_BHSD ? t.get({b, h, s, d}) : t.get({b, s, h, d});
}

}  // namespace

Comparison compare_with_reference(const AttentionCase& c) {
  const Problem& p = c.problem;
  const int64_t D = p.head_dim, group = p.heads_q / p.heads_kv;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  // Dense [batch, seq, heads, dim] copies: element reads through the strided accessor are slow.
  auto dense = [&](const HostTensor& t, int64_t seq, int64_t heads) {
    std::vector<double> out(static_cast<size_t>(p.batch * seq * heads * D));
    size_t i = 0;
    for (int64_t b = 0; b < p.batch; ++b)
      for (int64_t s = 0; s < seq; ++s)
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t d = 0; d < D; ++d) out[i++] = at(t, c.layout, b, s, h, d);
    return out;
  };
  const auto q = dense(c.q, p.seqlen_q, p.heads_q), out = dense(c.out, p.seqlen_q, p.heads_q);
  const auto k = dense(c.k, p.seqlen_k, p.heads_kv), v = dense(c.v, p.seqlen_k, p.heads_kv);
  auto row = [&](const std::vector<double>& t, int64_t b, int64_t s, int64_t h, int64_t seq, int64_t heads) {
    return &t[static_cast<size_t>(((b * seq + s) * heads + h) * D)];
  };
  Comparison result;
  double num = 0, den = 0, lse_sq = 0;
  int64_t lse_rows = 0;
  std::vector<double> scores(static_cast<size_t>(p.seqlen_k));
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t h = 0; h < p.heads_q; ++h)
      for (int64_t i = 0; i < p.seqlen_q; ++i) {
        const int64_t hk = h / group;
        int64_t visible = p.seqlen_k;
        if (p.causal) visible = std::clamp<int64_t>(i + p.seqlen_k - p.seqlen_q + 1, 0, p.seqlen_k);
        const double* qr = row(q, b, i, h, p.seqlen_q, p.heads_q);
        double max_score = -kInf, sum = 0;
        for (int64_t j = 0; j < visible; ++j) {
          const double* kr = row(k, b, j, hk, p.seqlen_k, p.heads_kv);
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += qr[d] * kr[d];
          scores[j] = dot * static_cast<double>(p.softmax_scale);
          max_score = std::max(max_score, scores[j]);
        }
        for (int64_t j = 0; j < visible; ++j) sum += (scores[j] = std::exp(scores[j] - max_score));
        std::vector<double> ref(static_cast<size_t>(D), 0.0);
        for (int64_t j = 0; j < visible; ++j) {
          const double* vr = row(v, b, j, hk, p.seqlen_k, p.heads_kv);
          const double w = scores[j] / sum;
          for (int64_t d = 0; d < D; ++d) ref[d] += w * vr[d];
        }
        const double* o = row(out, b, i, h, p.seqlen_q, p.heads_q);
        for (int64_t d = 0; d < D; ++d) {
          if (!std::isfinite(o[d])) {
            ++result.non_finite;
            continue;
          }
          num += (o[d] - ref[d]) * (o[d] - ref[d]);
          den += ref[d] * ref[d];
        }
        if (p.want_lse) {
          const double x = c.lse.get({b, h, i});
          if (visible == 0) {
            if (!(std::isinf(x) && x < 0)) result.lse_error = kInf;
          } else if (!std::isfinite(x)) {
            result.lse_error = kInf;
          } else {
            const double diff = std::abs(x - (max_score + std::log(sum)));
            result.lse_error = std::max(result.lse_error, diff);
            lse_sq += diff * diff;
            ++lse_rows;
          }
        }
      }
  result.rel_error = result.non_finite ? kInf : (den == 0 ? std::sqrt(num) : std::sqrt(num / den));
  result.lse_rms = std::isinf(result.lse_error) ? kInf
                   : lse_rows > 0               ? std::sqrt(lse_sq / static_cast<double>(lse_rows))
                                                : 0.0;
  result.gaps_untouched = c.out.gaps_poisoned();
  return result;
}

double tolerance(int32_t dtype) {
  switch (dtype) {
    case PFA_DTYPE_FP32: return 1e-4;
    case PFA_DTYPE_FP16: return 4e-3;
    case PFA_DTYPE_BF16: return 2e-2;
  }
  return 0;
}

}  // namespace pfa::conformance

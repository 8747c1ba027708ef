#include "problem_tensors.h"

#include <cstring>

namespace pfa::cli {

namespace {

uint16_t to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

// Inputs stay inside fp16's normal range, so a plain rebias with round-to-nearest suffices.
uint16_t to_fp16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const int exponent = static_cast<int>((bits >> 23) & 0xff) - 127 + 15;
  if (exponent <= 0) return static_cast<uint16_t>(sign);
  const uint32_t rounded = (bits & 0x7fffffu) + 0xfffu + ((bits >> 13) & 1u);
  return static_cast<uint16_t>(sign + (static_cast<uint32_t>(exponent) << 10) + (rounded >> 13));
}

std::vector<int64_t> dims(const Problem& p, int64_t seq, int64_t heads) {
  return p.layout == PFA_LAYOUT_BHSD ? std::vector<int64_t>{p.batch, heads, seq, p.head_dim}
                                     : std::vector<int64_t>{p.batch, seq, heads, p.head_dim};
}

}  // namespace

DenseTensor::DenseTensor(pfa_dtype dtype, std::vector<int64_t> shape)
    : dtype_(dtype), shape_(std::move(shape)) {
  int64_t n = 1;
  for (auto d : shape_) n *= d;
  storage_.resize(static_cast<size_t>(dtype == PFA_DTYPE_FP32 ? n : (n + 1) / 2));
  tensor_.data = storage_.data();
  tensor_.device = {kDLCPU, 0};
  tensor_.ndim = static_cast<int32_t>(shape_.size());
  tensor_.dtype = dtype == PFA_DTYPE_FP32   ? DLDataType{kDLFloat, 32, 1}
                  : dtype == PFA_DTYPE_FP16 ? DLDataType{kDLFloat, 16, 1}
                                            : DLDataType{kDLBfloat, 16, 1};
  tensor_.shape = shape_.data();
}

void DenseTensor::fill_random(std::mt19937_64& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  if (dtype_ == PFA_DTYPE_FP32) {
    auto* p = reinterpret_cast<float*>(storage_.data());
    for (size_t i = 0; i < storage_.size(); ++i) p[i] = dist(rng);
    return;
  }
  auto* p = reinterpret_cast<uint16_t*>(storage_.data());
  for (size_t i = 0; i < storage_.size() * 2; ++i) {
    const float f = dist(rng);
    p[i] = dtype_ == PFA_DTYPE_BF16 ? to_bf16(f) : to_fp16(f);
  }
}

ProblemTensors::ProblemTensors(const Problem& p, std::mt19937_64& rng)
    : problem(p),
      q(static_cast<pfa_dtype>(p.dtype), dims(p, p.seqlen_q, p.heads_q)),
      k(static_cast<pfa_dtype>(p.dtype), dims(p, p.seqlen_k, p.heads_kv)),
      v(static_cast<pfa_dtype>(p.dtype), dims(p, p.seqlen_k, p.heads_kv)),
      out(static_cast<pfa_dtype>(p.dtype), dims(p, p.seqlen_q, p.heads_q)),
      lse(PFA_DTYPE_FP32, p.want_lse ? std::vector<int64_t>{p.batch, p.heads_q, p.seqlen_q}
                                     : std::vector<int64_t>{1, 1, 1}) {
  q.fill_random(rng);
  k.fill_random(rng);
  v.fill_random(rng);
}

AttentionOptions ProblemTensors::options() {
  AttentionOptions o;
  o.causal = problem.causal != 0;
  o.softmax_scale = problem.softmax_scale;
  o.layout = problem.layout == PFA_LAYOUT_BHSD ? PFA_LAYOUT_BHSD : PFA_LAYOUT_BSHD;
  o.lse = problem.want_lse ? &lse.dl() : nullptr;
  return o;
}

}  // namespace pfa::cli

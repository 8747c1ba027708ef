#include "problem_tensors.h"

#include "cuda_events.h"

#include <pfa/error.h>

#include <fmt/format.h>

#include <algorithm>
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

DenseTensor::~DenseTensor() {
  if (device_data_ != nullptr) {
    if (const auto* rt = pfa::detail::cuda_runtime()) rt->free(device_data_);
  }
}

void DenseTensor::to_device(int device) {
  std::string why;
  const auto* rt = pfa::detail::cuda_runtime(&why);
  if (rt == nullptr) throw Error(ErrorCode::unsupported, "CUDA tensors: " + why);
  int current = 0;
  rt->get_device(&current);
  if (rt->set_device(device) != 0) {
    const int e = rt->get_last_error();
    throw Error(ErrorCode::unsupported,
                fmt::format("CUDA tensors: no device {} ({})", device, rt->error_text(e)));
  }
  const size_t bytes = storage_.size() * sizeof(uint32_t);
  void* data = nullptr;
  int e = rt->malloc(&data, std::max<size_t>(bytes, 4));
  if (e == 0) e = rt->memcpy(data, storage_.data(), bytes, pfa::detail::CudaRuntime::kMemcpyHostToDevice);
  if (current != device) rt->set_device(current);
  if (e != 0) {
    rt->get_last_error();
    if (data != nullptr) rt->free(data);
    throw Error(ErrorCode::unsupported,
                fmt::format("CUDA tensors: {} bytes on device {}: {}", bytes, device,
                            rt->error_text(e)));
  }
  device_data_ = data;
  storage_.clear();
  storage_.shrink_to_fit();
  tensor_.data = device_data_;
  tensor_.device = {kDLCUDA, device};
}

// Values in [-1, 1) from a splitmix64 stream seeded by `rng`: a few nanoseconds per value, so
// that the tens of millions of elements of a long-sequence GPU problem fill in milliseconds.
void DenseTensor::fill_random(std::mt19937_64& rng) {
  uint64_t state = rng();
  auto next = [&state] {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  // 24 random bits -> [-1, 1)
  auto value = [](uint64_t bits) { return static_cast<float>(bits & 0xffffff) * (2.0f / 16777216.0f) - 1.0f; };
  if (dtype_ == PFA_DTYPE_FP32) {
    auto* p = reinterpret_cast<float*>(storage_.data());
    for (size_t i = 0; i < storage_.size(); i += 2) {
      const uint64_t r = next();
      p[i] = value(r);
      if (i + 1 < storage_.size()) p[i + 1] = value(r >> 32);
    }
    return;
  }
  auto* p = reinterpret_cast<uint16_t*>(storage_.data());
  const size_t n = storage_.size() * 2;
  for (size_t i = 0; i < n; i += 2) {
    const uint64_t r = next();
    const float a = value(r), b = value(r >> 32);
    p[i] = dtype_ == PFA_DTYPE_BF16 ? to_bf16(a) : to_fp16(a);
    if (i + 1 < n) p[i + 1] = dtype_ == PFA_DTYPE_BF16 ? to_bf16(b) : to_fp16(b);
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
  if (p.device_type == kDLCUDA) {
    for (DenseTensor* t : {&q, &k, &v, &out, &lse}) t->to_device(p.device_id);
  }
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

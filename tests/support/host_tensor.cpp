#include "host_tensor.h"

#include "float16.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace pfa::test {

namespace {
size_t element_size(pfa_dtype dtype) { return dtype == PFA_DTYPE_FP32 ? 4 : 2; }
}  // namespace

HostTensor::HostTensor(pfa_dtype dtype, std::vector<int64_t> shape, std::vector<int64_t> strides)
    : dtype_(dtype), shape_(std::move(shape)), strides_(std::move(strides)) {
  const size_t n = shape_.size();
  if (strides_.empty()) {
    strides_.assign(n, 1);
    for (size_t i = n; i-- > 1;) strides_[i - 1] = strides_[i] * shape_[i];
  }
  if (strides_.size() != n) throw std::invalid_argument("HostTensor: strides rank differs");
  int64_t last = 0;
  for (size_t i = 0; i < n; ++i) last += (shape_[i] - 1) * strides_[i];
  storage_.assign(static_cast<size_t>(last + 1) * element_size(dtype_) + 64, 0);
  tensor_.data = storage_.data();
  tensor_.device = {kDLCPU, 0};
  tensor_.ndim = static_cast<int32_t>(n);
  tensor_.dtype = dtype_ == PFA_DTYPE_FP32   ? DLDataType{kDLFloat, 32, 1}
                  : dtype_ == PFA_DTYPE_FP16 ? DLDataType{kDLFloat, 16, 1}
                                             : DLDataType{kDLBfloat, 16, 1};
  tensor_.shape = shape_.data();
  tensor_.strides = strides_.data();
  tensor_.byte_offset = 0;
}

int64_t HostTensor::numel() const {
  int64_t n = 1;
  for (auto s : shape_) n *= s;
  return n;
}

size_t HostTensor::offset_bytes(const int64_t* index) const {
  int64_t off = 0;
  for (size_t i = 0; i < shape_.size(); ++i) off += index[i] * strides_[i];
  return static_cast<size_t>(off) * element_size(dtype_);
}

double HostTensor::get(const int64_t* index) const {
  const unsigned char* p = storage_.data() + offset_bytes(index);
  if (dtype_ == PFA_DTYPE_FP32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  return dtype_ == PFA_DTYPE_FP16 ? fp16_to_float(h) : bf16_to_float(h);
}

void HostTensor::set(const int64_t* index, double value) {
  unsigned char* p = storage_.data() + offset_bytes(index);
  const float f = static_cast<float>(value);
  if (dtype_ == PFA_DTYPE_FP32) {
    std::memcpy(p, &f, 4);
    return;
  }
  const uint16_t h = dtype_ == PFA_DTYPE_FP16 ? float_to_fp16(f) : float_to_bf16(f);
  std::memcpy(p, &h, 2);
}

bool next_index(std::vector<int64_t>& index, const std::vector<int64_t>& shape) {
  for (size_t i = shape.size(); i-- > 0;) {
    if (++index[i] < shape[i]) return true;
    index[i] = 0;
  }
  return false;
}

void HostTensor::fill_random(std::mt19937_64& rng, double lo, double hi) {
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<int64_t> index(shape_.size(), 0);
  do {
    double x = dist(rng);
    if (x == 0.0) x = (hi - lo) * 1e-3 + lo;
    set(index.data(), x);
  } while (next_index(index, shape_));
}

void HostTensor::poison() {
  if (dtype_ == PFA_DTYPE_FP32) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (size_t i = 0; i + 4 <= storage_.size(); i += 4) std::memcpy(&storage_[i], &nan, 4);
  } else {
    const uint16_t nan = 0x7fff;  // NaN in both fp16 and bf16
    for (size_t i = 0; i + 2 <= storage_.size(); i += 2) std::memcpy(&storage_[i], &nan, 2);
  }
}

int64_t HostTensor::count_non_finite() const {
  int64_t bad = 0;
  std::vector<int64_t> index(shape_.size(), 0);
  do {
    if (!std::isfinite(get(index.data()))) ++bad;
  } while (next_index(index, shape_));
  return bad;
}

}  // namespace pfa::test

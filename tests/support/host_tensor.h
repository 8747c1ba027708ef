// A CPU tensor for tests: owns its storage, any dtype pfa takes, any strides, and hands out a
// DLTensor view. Reads and writes elements as double so references stay in fp64.
#pragma once

#include <pfa/plugin_abi.h>

#include <cstdint>
#include <random>
#include <vector>

namespace pfa::test {

class HostTensor {
 public:
  HostTensor() = default;
  // Compact row-major unless strides (in elements) are given.
  HostTensor(pfa_dtype dtype, std::vector<int64_t> shape, std::vector<int64_t> strides = {});

  DLTensor& dl() { return tensor_; }
  const DLTensor& dl() const { return tensor_; }
  pfa_dtype dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }
  int64_t numel() const;
  void* data() { return storage_.data(); }
  // Bytes of backing storage (gaps between strided rows included), for copies to a device.
  size_t storage_bytes() const { return storage_.size(); }

  double get(const int64_t* index) const;
  void set(const int64_t* index, double value);
  double get(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    const int64_t idx[4] = {i0, i1, i2, i3};
    return get(idx);
  }
  double get(int64_t i0, int64_t i1, int64_t i2) const {
    const int64_t idx[3] = {i0, i1, i2};
    return get(idx);
  }

  // Uniform values in [lo, hi) in every element (rounded to the dtype). Never zeros.
  void fill_random(std::mt19937_64& rng, double lo = -1.0, double hi = 1.0);
  // NaN in every byte of storage, gaps between strided elements included.
  void poison();
  // Number of logical elements that are NaN or infinite.
  int64_t count_non_finite() const;

 private:
  size_t offset_bytes(const int64_t* index) const;

  pfa_dtype dtype_ = PFA_DTYPE_FP32;
  std::vector<int64_t> shape_, strides_;
  std::vector<unsigned char> storage_;
  DLTensor tensor_{};
};

// Advances a multi-index over `shape`, last dimension fastest; false after the last element.
bool next_index(std::vector<int64_t>& index, const std::vector<int64_t>& shape);

}  // namespace pfa::test

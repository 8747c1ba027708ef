// Host tensors in any dtype pfa takes, random attention cases and their fp64 reference: what the
// conformance checks feed a plugin and how they judge its output.
#pragma once

#include <pfa/plugin_abi.h>
#include <pfa/problem.h>

#include <cstdint>
#include <random>
#include <vector>

namespace pfa::conformance {

// A CPU tensor owning its bytes, with explicit strides (elements), read and written as double.
class HostTensor {
 public:
  HostTensor() = default;
  HostTensor(pfa_dtype dtype, std::vector<int64_t> shape, std::vector<int64_t> strides = {});
  HostTensor(const HostTensor&) = delete;
  HostTensor& operator=(const HostTensor&) = delete;
  HostTensor(HostTensor&& other) noexcept { *this = std::move(other); }
  HostTensor& operator=(HostTensor&& other) noexcept;

  DLTensor& dl() { return tensor_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  double get(const std::vector<int64_t>& index) const;
  void set(const std::vector<int64_t>& index, double value);
  void fill_random(std::mt19937_64& rng);  // uniform in [-1, 1), never zero
  void poison();                           // NaN in every element and every gap between them
  const std::vector<unsigned char>& bytes() const { return storage_; }
  // Elements that are NaN or infinite.
  int64_t count_non_finite() const;
  // True when every byte outside the logical elements still holds the poison pattern.
  bool gaps_poisoned() const;

 private:
  size_t offset(const std::vector<int64_t>& index) const;
  void rebind();

  pfa_dtype dtype_ = PFA_DTYPE_FP32;
  std::vector<int64_t> shape_, strides_;
  std::vector<unsigned char> storage_;
  DLTensor tensor_{};
};

// Advances a multi-index over `shape`, last dimension fastest; false after the last element.
bool next_index(std::vector<int64_t>& index, const std::vector<int64_t>& shape);

// q, k, v (random), out and lse (poisoned) for a problem, laid out as `layout` says; `padded`
// leaves gaps between rows so the tensors are strided.
struct AttentionCase {
  Problem problem{};
  pfa_layout layout = PFA_LAYOUT_BSHD;
  bool padded = false;
  HostTensor q, k, v, out, lse;
};

AttentionCase make_case(const Problem& problem, pfa_layout layout, bool padded,
                        std::mt19937_64& rng);

struct Comparison {
  double rel_error = 0;   // ||out - ref|| / ||ref||
  double lse_error = 0;   // largest |lse - ref| (rows that see no key must be -inf)
  double lse_rms = 0;     // root-mean-square |lse - ref| over the rows that see a key
  int64_t non_finite = 0; // output elements left NaN or infinite
  bool gaps_untouched = true;
};

// Compares the case's output with exact attention computed in double on the same inputs.
Comparison compare_with_reference(const AttentionCase& c);

// Relative error an exact backend must stay under, by dtype (output rounding dominates).
double tolerance(int32_t dtype);

}  // namespace pfa::conformance

// Validation of one attention call: checks the caller's tensors and options, and normalises every
// layout to the ABI's [batch, seq, heads, head_dim] view. No allocation: the views live inline.
#pragma once

#include <pfa/options.h>
#include <pfa/problem.h>

#include <array>

namespace pfa::detail {

struct TensorView {
  DLTensor tensor{};
  std::array<int64_t, 4> shape{};
  std::array<int64_t, 4> strides{};
};

struct ValidatedCall {
  Problem problem{};
  TensorView q, k, v, out, lse;
  bool has_lse = false;
};

// Fills `call` or throws pfa::Error(invalid_argument) saying what is wrong. Reads only metadata.
void validate_call(const DLTensor& q, const DLTensor& k, const DLTensor& v, const DLTensor& out,
                   const AttentionOptions& options, ValidatedCall& call);

}  // namespace pfa::detail

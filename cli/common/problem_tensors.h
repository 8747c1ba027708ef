// CPU tensors for one problem filled with fresh random values: what pfa-demo and pfa-tune feed the
// engine when they measure backends.
#pragma once

#include <pfa/options.h>
#include <pfa/problem.h>

#include <cstdint>
#include <random>
#include <vector>

namespace pfa::cli {

class DenseTensor {
 public:
  DenseTensor(pfa_dtype dtype, std::vector<int64_t> shape);
  DLTensor& dl() { return tensor_; }
  void fill_random(std::mt19937_64& rng);

 private:
  pfa_dtype dtype_;
  std::vector<int64_t> shape_;
  std::vector<uint32_t> storage_;  // 4-byte words: fp32, or two 16-bit values
  DLTensor tensor_{};
};

// q, k, v, out (and lse when the problem asks) in BSHD or BHSD, inputs random in [-1, 1).
struct ProblemTensors {
  ProblemTensors(const Problem& problem, std::mt19937_64& rng);
  // Options describing these tensors (causal, scale, layout, lse).
  AttentionOptions options();

  Problem problem;
  DenseTensor q, k, v, out, lse;
};

}  // namespace pfa::cli

// Tensors for one problem filled with fresh random values: what pfa-demo and pfa-tune feed the
// engine when they measure backends. On the CPU, or on a CUDA device when the problem says
// device=cuda (device memory through the CUDA runtime opened at run time; pfa links no CUDA).
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
  ~DenseTensor();
  DenseTensor(const DenseTensor&) = delete;
  DenseTensor& operator=(const DenseTensor&) = delete;
  DLTensor& dl() { return tensor_; }
  void fill_random(std::mt19937_64& rng);
  // Moves the values to CUDA device `device` (the host copy is released); throws pfa::Error
  // (unsupported) when there is no CUDA runtime or device, or the copy fails.
  void to_device(int device);

 private:
  pfa_dtype dtype_;
  std::vector<int64_t> shape_;
  std::vector<uint32_t> storage_;  // 4-byte words: fp32, or two 16-bit values
  void* device_data_ = nullptr;    // CUDA memory when on a device
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

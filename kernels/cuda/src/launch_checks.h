// Checks and results shared by the launch paths of the CUDA kernels (sm_90a, sm_80, fallback).
#pragma once

#include <pfa/kernels/cuda/attention_cuda.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

namespace pfa::kernels::cuda {

// Every dimension that is stepped over (size > 1) moves a whole number of 16-byte chunks of
// 16-bit elements (TMA and cp.async both need it); a size-1 dimension's stride never matters.
inline bool strides_16_bytes(const int64_t stride[3], int64_t batch, int64_t seq, int64_t heads) {
  const int64_t sizes[3] = {batch, seq, heads};
  for (int i = 0; i < 3; ++i)
    if (sizes[i] > 1 && stride[i] % 8 != 0) return false;
  return true;
}

inline bool aligned_to(const void* ptr, uintptr_t bytes) {
  return (reinterpret_cast<uintptr_t>(ptr) & (bytes - 1)) == 0;
}

// "what: cudaErrorX: text"
inline std::string cuda_error_text(cudaError_t e, const char* what) {
  return std::string(what) + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
}

inline LaunchResult launch_failure(LaunchStatus status, std::string why, const char* path) {
  LaunchResult r;
  r.status = status;
  r.message = std::move(why);
  r.path = path;
  return r;
}

}  // namespace pfa::kernels::cuda

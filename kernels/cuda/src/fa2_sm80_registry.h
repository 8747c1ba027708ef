// The table of compiled sm_80 kernel instantiations (fa2_sm80.cuh): one per (head dim, dtype),
// each in its own generated translation unit, and the checks and launch that attention_cuda.cu
// uses for Path::sm80.
#pragma once

#include <pfa/kernels/attention_params.h>
#include <pfa/kernels/cuda/attention_cuda.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

namespace pfa::kernels::sm80 {

struct Fa2Args;

using Fa2LaunchFn = cudaError_t (*)(const Fa2Args&, int64_t grid, cudaStream_t stream);

struct Fa2Kernel {
  int head_dim;
  bool bf16;
  int block_m;     // query rows per CTA
  int smem_bytes;  // dynamic shared memory per CTA
  const char* name;
  Fa2LaunchFn launch;
};

// The compiled kernel for exactly this head dim, or nullptr.
const Fa2Kernel* find_fa2_kernel(int head_dim, bool bf16);
// The compiled kernel with the smallest head dim >= head_dim (columns past head_dim are
// zero-filled), or nullptr.
const Fa2Kernel* fa2_kernel_for(int head_dim, bool bf16);
// "64, 96, 128, 160, 192, 256": the head dims compiled.
const char* fa2_head_dims();

// Empty when the sm_80 kernel can serve p on a device of compute capability (cc_major, cc_minor),
// looking at shapes, dtype and strides only; otherwise why not.
std::string sm80_reason(const AttentionParams& p, int cc_major, int cc_minor);
// The same plus the pointers (16-byte aligned q/k/v for cp.async), for a launch.
std::string sm80_launch_reason(const AttentionParams& p, int cc_major, int cc_minor);
// Queues p on `stream` of `device` (sm80_launch_reason(p) must be empty). No synchronisation.
cuda::LaunchResult run_sm80(const AttentionParams& p, cudaStream_t stream, int device);

}  // namespace pfa::kernels::sm80

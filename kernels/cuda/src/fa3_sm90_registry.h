// The table of compiled sm_90a kernel instantiations: one entry per (head dim, dtype, variant).
// Each instantiation lives in its own generated translation unit so they compile in parallel.
#pragma once

#include <cuda.h>
#include <cuda_runtime_api.h>

namespace pfa::kernels::sm90 {

struct Fa3Args;

// Tensor maps of q, k, v and (used only by kernels that stage the output) o.
using Fa3LaunchFn = cudaError_t (*)(const CUtensorMap&, const CUtensorMap&, const CUtensorMap&,
                                    const CUtensorMap&, const Fa3Args&, int grid,
                                    cudaStream_t stream);

struct Fa3Kernel {
  int head_dim;
  int block_n;  // key rows per block: the K/V tensor-map box height
  int box_cols;  // head-dim columns per tensor-map box: 64 (128-byte swizzle) or 32 (64-byte)
  int variant;  // index into the variant list (see CMakeLists.txt)
  bool bf16;
  const char* name;
  Fa3LaunchFn launch;
  int smem_bytes;
  bool stages_o;  // writes the output through shared memory and TMA when Fa3Args::o_tma is set
};

// nullptr when that combination was not compiled.
const Fa3Kernel* find_fa3_kernel(int head_dim, bool bf16, int variant);

}  // namespace pfa::kernels::sm90

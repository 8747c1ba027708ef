// The simple kernel: one warp per query row, lanes split the head dim, keys walked one by one
// with an online softmax. Correct on any CUDA device for any head dim up to 256; slow.
#pragma once

#include <pfa/kernels/attention_params.h>

#include <cuda_runtime_api.h>

namespace pfa::kernels::cuda {

constexpr int kFallbackMaxHeadDim = 256;

cudaError_t launch_fallback_attention(const AttentionParams& p, cudaStream_t stream);

}  // namespace pfa::kernels::cuda

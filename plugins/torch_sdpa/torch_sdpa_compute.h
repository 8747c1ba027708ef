// The LibTorch side of the torch_sdpa plugin: attention on tensors that arrive through the ABI.
// Kept apart from the ABI glue so that only this file pulls in the ATen operator headers.
#pragma once

#include <pfa/plugin_abi.h>

#include <cstddef>

namespace pfa::torch_sdpa {

// Computes attention into args.out (and args.lse) with LibTorch, on the caller's CUDA stream
// where the tensors are on a GPU. Writes the name of the path that ran into `detail`. Throws
// c10::Error or std::exception on failure; the ABI glue turns those into a status.
void compute_attention(const pfa_run_args& args, char* detail, size_t capacity);

// True when this LibTorch multiplies fp16 matrices on the CPU (1.13 does not).
bool cpu_supports_fp16();

// "LibTorch 1.13.0" and the like.
const char* torch_version_text();

}  // namespace pfa::torch_sdpa

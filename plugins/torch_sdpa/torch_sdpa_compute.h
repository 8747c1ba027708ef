// The LibTorch side of the torch_sdpa plugin: attention on tensors that arrive through the ABI.
// Kept apart from the ABI glue so that only this file pulls in the ATen operator headers.
#pragma once

#include <pfa/plugin_abi.h>

#include <cstddef>
#include <string>

namespace pfa::torch_sdpa {

// Which of LibTorch's attention kernels a plugin built from this source calls.
//  automatic: at::scaled_dot_product_attention, PyTorch's own priority order (torch_sdpa).
//  flash, cudnn, efficient: the ATen operator of that kernel, called directly, on CUDA only
//  (torch_sdpa_flash, torch_sdpa_cudnn, torch_sdpa_efficient). Calling the operator itself
//  leaves PyTorch's process-wide SDP switches alone: they are not thread-safe.
enum class Path { automatic = 0, flash = 1, cudnn = 2, efficient = 3 };

const char* path_name(Path path);  // "sdpa", "flash", "cudnn", "efficient"

// Why `path` cannot serve the problem on a device of compute capability `sm` (major * 10 +
// minor; 0 when unknown), or an empty string when it can. Only the shape, dtype and version
// constraints of the operator: the device type is the caller's business.
std::string path_refusal(Path path, const pfa_problem& problem, int sm);

// Computes attention into args.out (and args.lse) with LibTorch, on the caller's CUDA stream
// where the tensors are on a GPU. Writes the name of the path that ran into `detail`. Throws
// c10::Error or std::exception on failure; the ABI glue turns those into a status.
void compute_attention(const pfa_run_args& args, Path path, char* detail, size_t capacity);

// "cuDNN 9.19.0" when this LibTorch has CUDA and cuDNN, else an empty string.
std::string cudnn_version_text();

// True when this LibTorch multiplies fp16 matrices on the CPU (1.13 does not).
bool cpu_supports_fp16();

// "LibTorch 1.13.0" and the like.
const char* torch_version_text();

}  // namespace pfa::torch_sdpa

// One of PyTorch's attention kernels called through its ATen operator (flash, cuDNN,
// memory-efficient). Defined in torch_sdpa_kernel_op.cpp, which each plugin compiles for its own
// kernel only (PFA_SDPA_PATH): an operator whose signature differs in some LibTorch breaks only
// the plugin of that kernel.
#pragma once

#include "torch_sdpa_compute.h"

#include <ATen/core/Tensor.h>
#include <torch/version.h>

// flash and memory-efficient with a `scale` from 2.1, cuDNN with (attn_bias, compute_log_sumexp)
// from 2.5; only on a LibTorch with CUDA (these plugins serve CUDA tensors only).
#if defined(PFA_TORCH_CUDA) && \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1))
#define PFA_SDPA_KERNEL_OPS 1
#endif
#if defined(PFA_SDPA_KERNEL_OPS) && (TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 5)
#define PFA_SDPA_CUDNN_OP 1
#endif

namespace pfa::torch_sdpa {

// Attention of [B, H, L, D] views by `path`'s kernel (K/V heads already expanded where the
// kernel needs it); returns a new tensor. Throws c10::Error when this plugin was not built for
// `path` or the LibTorch lacks the operator.
at::Tensor run_kernel_op(Path path, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                         bool causal, double scale);

// cudnnGetVersion() of the cuDNN in this process, 0 when none is loaded.
size_t cudnn_version();

}  // namespace pfa::torch_sdpa

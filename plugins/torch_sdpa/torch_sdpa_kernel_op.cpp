#include "torch_sdpa_kernel_op.h"

#include <c10/util/Exception.h>

#include <optional>
#include <tuple>

#ifndef PFA_SDPA_PATH
#define PFA_SDPA_PATH 0
#endif

#if defined(PFA_SDPA_KERNEL_OPS) && PFA_SDPA_PATH == 1
#include <ATen/ops/_scaled_dot_product_flash_attention.h>
#elif defined(PFA_SDPA_KERNEL_OPS) && PFA_SDPA_PATH == 3
#include <ATen/ops/_scaled_dot_product_efficient_attention.h>
#elif defined(PFA_SDPA_CUDNN_OP) && PFA_SDPA_PATH == 2
#include <ATen/ops/_scaled_dot_product_cudnn_attention.h>
#endif

namespace pfa::torch_sdpa {

namespace {
// Optional tensor arguments: c10::optional until LibTorch made it std::optional (2.4).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
using OptionalTensor = std::optional<at::Tensor>;
#else
using OptionalTensor = c10::optional<at::Tensor>;
#endif
}  // namespace

at::Tensor run_kernel_op(Path path, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                         bool causal, double scale) {
  TORCH_CHECK(static_cast<int>(path) == PFA_SDPA_PATH, "this plugin calls the ",
              path_name(static_cast<Path>(PFA_SDPA_PATH)), " kernel, not ", path_name(path));
#if defined(PFA_SDPA_KERNEL_OPS) && PFA_SDPA_PATH == 1
  // (query, key, value, dropout_p, is_causal, return_debug_mask, scale) -> (output, lse, ...)
  return std::get<0>(at::_scaled_dot_product_flash_attention(q, k, v, 0.0, causal, false, scale));
#elif defined(PFA_SDPA_KERNEL_OPS) && PFA_SDPA_PATH == 3
  // (query, key, value, attn_bias, compute_log_sumexp, dropout_p, is_causal, scale)
  return std::get<0>(at::_scaled_dot_product_efficient_attention(
      q, k, v, OptionalTensor(), false, 0.0, causal, scale));
#elif defined(PFA_SDPA_CUDNN_OP) && PFA_SDPA_PATH == 2
  // (query, key, value, attn_bias, compute_log_sumexp, dropout_p, is_causal, return_debug_mask,
  //  scale) -> (output, logsumexp, ...)
  return std::get<0>(at::_scaled_dot_product_cudnn_attention(
      q, k, v, OptionalTensor(), false, 0.0, causal, false, scale));
#else
  (void)q, (void)k, (void)v, (void)causal, (void)scale;
  TORCH_CHECK(false, "the ", path_name(path), " kernel is not available in ", torch_version_text(),
              " (needs 2.1+ with CUDA; cuDNN 2.5+)");
  return {};
#endif
}

}  // namespace pfa::torch_sdpa

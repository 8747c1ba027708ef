// Path::sm80: which problems the mma.sync kernel (fa2_sm80.cuh) takes, and its launch.
#include <cstdint>
#include <string>

#include "fa2_sm80.cuh"
#include "fa2_sm80_registry.h"
#include "launch_checks.h"

namespace pfa::kernels::sm80 {
namespace {

using cuda::aligned_to;
using cuda::cuda_error_text;
using cuda::launch_failure;
using cuda::LaunchStatus;
using cuda::strides_16_bytes;

constexpr int64_t kMaxSeq = int64_t(1) << 30;

}  // namespace

std::string sm80_reason(const AttentionParams& p, int cc_major, int /*cc_minor*/) {
  if (cc_major < 8) return "the sm80 kernel needs compute capability 8.0 or newer";
  if (p.dtype != DType::fp16 && p.dtype != DType::bf16)
    return "the sm80 kernel serves fp16 and bf16 only";
  const std::string d = std::to_string(p.head_dim);
  if (p.head_dim < 1 || p.head_dim % 8 != 0)
    return "head dim " + d + " is not a multiple of 8: the sm80 kernel loads 16-byte rows with "
           "cp.async (the fallback serves it)";
  if (p.head_dim > 256 || fa2_kernel_for(int(p.head_dim), p.dtype == DType::bf16) == nullptr)
    return "no sm80 kernel for head dim " + d + " (compiled: " + fa2_head_dims() +
           "; smaller multiples of 8 run on the next of these)";
  if (!(p.softmax_scale > 0.f)) return "the sm80 kernel needs a positive softmax scale";
  if (p.heads_kv < 1 || p.heads_q % p.heads_kv != 0)
    return "heads_q must be a multiple of heads_kv";
  if (p.seqlen_q > kMaxSeq || p.seqlen_k > kMaxSeq) return "sequence too long for the sm80 kernel";
  const Fa2Kernel* k = fa2_kernel_for(int(p.head_dim), p.dtype == DType::bf16);
  const int64_t m_blocks = (p.seqlen_q + k->block_m - 1) / k->block_m;
  if (p.heads_q > 0x7fffffff || p.batch > 0x7fffffff ||
      double(m_blocks) * double(p.heads_q) * double(p.batch) > 2147483647.0)
    return "too many query tiles for one sm80 launch";
  if (!strides_16_bytes(p.q_stride, p.batch, p.seqlen_q, p.heads_q) ||
      !strides_16_bytes(p.k_stride, p.batch, p.seqlen_k, p.heads_kv) ||
      !strides_16_bytes(p.v_stride, p.batch, p.seqlen_k, p.heads_kv))
    return "q/k/v strides are not multiples of 8 elements (16-byte rows for cp.async)";
  return {};
}

std::string sm80_launch_reason(const AttentionParams& p, int cc_major, int cc_minor) {
  std::string why = sm80_reason(p, cc_major, cc_minor);
  if (!why.empty()) return why;
  if (!aligned_to(p.q, 16) || !aligned_to(p.k, 16) || !aligned_to(p.v, 16))
    return "q/k/v base pointers are not 16-byte aligned (cp.async)";
  if (!aligned_to(p.out, 2)) return "output pointer is not 2-byte aligned";
  return {};
}

cuda::LaunchResult run_sm80(const AttentionParams& p, cudaStream_t stream, int device) {
  const bool bf16 = p.dtype == DType::bf16;
  const Fa2Kernel* kern = fa2_kernel_for(int(p.head_dim), bf16);
  if (kern == nullptr)
    return launch_failure(LaunchStatus::unsupported, "no sm80 kernel for this head dim", "none");
  int optin = 0;
  const cudaError_t e =
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (e != cudaSuccess)
    return launch_failure(LaunchStatus::device_error,
                          cuda_error_text(e, "sm80 attention launch"), kern->name);
  if (kern->smem_bytes > optin)
    return launch_failure(LaunchStatus::unsupported,
                          std::string(kern->name) + " needs " + std::to_string(kern->smem_bytes) +
                              " bytes of shared memory per block; this device allows " +
                              std::to_string(optin),
                          kern->name);
  Fa2Args a{};
  a.q = p.q;
  a.k = p.k;
  a.v = p.v;
  a.out = p.out;
  a.lse = p.lse;
  for (int i = 0; i < 3; ++i) {
    a.q_stride[i] = p.q_stride[i];
    a.k_stride[i] = p.k_stride[i];
    a.v_stride[i] = p.v_stride[i];
    a.o_stride[i] = p.o_stride[i];
  }
  a.seqlen_q = int(p.seqlen_q);
  a.seqlen_k = int(p.seqlen_k);
  a.heads_q = int(p.heads_q);
  a.group = int(p.heads_q / p.heads_kv);
  a.head_dim = int(p.head_dim);
  a.m_blocks = int((p.seqlen_q + kern->block_m - 1) / kern->block_m);
  a.scale_log2 = p.softmax_scale * 1.4426950408889634f;
  a.causal = p.causal ? 1 : 0;
  a.out_vec =
      aligned_to(p.out, 16) && strides_16_bytes(p.o_stride, p.batch, p.seqlen_q, p.heads_q);
  const int64_t grid = int64_t(a.m_blocks) * p.heads_q * p.batch;
  if (grid == 0) {
    cuda::LaunchResult r;
    r.path = kern->name;
    return r;
  }
  const cudaError_t le = kern->launch(a, grid, stream);
  if (le != cudaSuccess)
    return launch_failure(LaunchStatus::device_error,
                          cuda_error_text(le, "sm80 attention launch"), kern->name);
  cuda::LaunchResult r;
  r.path = kern->name;
  return r;
}

}  // namespace pfa::kernels::sm80

#include <pfa/kernels/cuda/attention_cuda.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "fa2_sm80_registry.h"
#include "fa3_sm90.cuh"
#include "fa3_sm90_registry.h"
#include "fallback_attention.h"
#include "launch_checks.h"
#include "tensor_map.h"

namespace pfa::kernels::cuda {
namespace {

constexpr int kVariants = 4;

bool is_sm90_head_dim(int64_t d) { return d == 64 || d == 96 || d == 128 || d == 192 || d == 256; }

std::string sm90_reason(const AttentionParams& p, int cc_major, int cc_minor) {
  if (cc_major != 9 || cc_minor != 0) return "the sm_90a kernel needs a Hopper GPU (sm_90)";
  if (!is_sm90_head_dim(p.head_dim))
    return "the sm_90a kernel serves head dims 64, 96, 128, 192 and 256";
  if (!(p.softmax_scale > 0.f)) return "the sm_90a kernel needs a positive softmax scale";
  if (p.seqlen_q > (int64_t(1) << 30) || p.seqlen_k > (int64_t(1) << 30))
    return "sequence too long for the sm_90a kernel";
  if (p.heads_q > 65535 || p.batch > 65535) return "too many heads or batches for one launch";
  if (p.seqlen_k < 1) return "the sm_90a kernel needs at least one key";
  if (!strides_16_bytes(p.q_stride, p.batch, p.seqlen_q, p.heads_q) ||
      !strides_16_bytes(p.k_stride, p.batch, p.seqlen_k, p.heads_kv) ||
      !strides_16_bytes(p.v_stride, p.batch, p.seqlen_k, p.heads_kv))
    return "q/k/v strides are not multiples of 16 bytes (TMA)";
  if ((p.o_stride[0] | p.o_stride[1] | p.o_stride[2]) & 1)
    return "output strides must be even (paired stores)";
  return {};
}

std::string common_reason(const AttentionParams& p) {
  if (p.dtype == DType::fp32) return "fp32 is not served (fp16 and bf16 only)";
  if (p.dtype != DType::fp16 && p.dtype != DType::bf16) return "unknown dtype";
  if (p.head_dim < 1 || p.head_dim > kFallbackMaxHeadDim) return "head dim must be 1..256";
  if (p.heads_kv < 1 || p.heads_q % p.heads_kv != 0)
    return "heads_q must be a multiple of heads_kv";
  return {};
}

LaunchResult device_error(cudaError_t e, const char* what, const char* path) {
  return launch_failure(LaunchStatus::device_error, cuda_error_text(e, what), path);
}

LaunchResult unsupported(std::string why) {
  return launch_failure(LaunchStatus::unsupported, std::move(why), "none");
}

LaunchResult run_sm90(const AttentionParams& p, cudaStream_t stream, int variant, int persistent,
                      int device) {
  const bool bf16 = p.dtype == DType::bf16;
  if (variant < 0) variant = sm90_default_variant(int(p.head_dim), p.seqlen_k, p.causal);
  if (persistent < 0) persistent = sm90_default_persistent(int(p.head_dim), p.seqlen_k, p.causal);
  const sm90::Fa3Kernel* kern = sm90::find_fa3_kernel(int(p.head_dim), bf16, variant);
  if (kern == nullptr) return unsupported("this sm_90a variant was not compiled");
  const int64_t m_blocks = (p.seqlen_q + 127) / 128;
  const int64_t tiles = m_blocks * p.heads_q * p.batch;
  if (tiles > 0x7fffffff) return unsupported("too many query tiles for one launch");
  CUtensorMap tq, tk, tv, to{};
  // TMA stores need what its loads need: a 16-byte-aligned base and 16-byte strides.
  const bool o_tma = kern->stages_o && aligned_to(p.out, 16) &&
                     strides_16_bytes(p.o_stride, p.batch, p.seqlen_q, p.heads_q);
  std::string err = make_tensor_map_bshd(&tq, p.q, bf16, p.batch, p.seqlen_q, p.heads_q,
                                         p.head_dim, p.q_stride, 128, kern->box_cols);
  if (err.empty())
    err = make_tensor_map_bshd(&tk, p.k, bf16, p.batch, p.seqlen_k, p.heads_kv, p.head_dim,
                               p.k_stride, kern->block_n, kern->box_cols);
  if (err.empty())
    err = make_tensor_map_bshd(&tv, p.v, bf16, p.batch, p.seqlen_k, p.heads_kv, p.head_dim,
                               p.v_stride, kern->block_n, kern->box_cols);
  if (err.empty() && o_tma)
    err = make_tensor_map_bshd(&to, p.out, bf16, p.batch, p.seqlen_q, p.heads_q, p.head_dim,
                               p.o_stride, 64, kern->box_cols);
  if (!err.empty()) return launch_failure(LaunchStatus::device_error, std::move(err), kern->name);
  sm90::Fa3Args a;
  a.out = p.out;
  a.lse = p.lse;
  for (int i = 0; i < 3; ++i) a.o_stride[i] = p.o_stride[i];
  a.seqlen_q = int(p.seqlen_q);
  a.seqlen_k = int(p.seqlen_k);
  a.heads_q = int(p.heads_q);
  a.group = int(p.heads_q / p.heads_kv);
  a.scale_log2 = p.softmax_scale * 1.4426950408889634f;
  a.causal = p.causal ? 1 : 0;
  a.m_blocks = int(m_blocks);
  a.tiles = int(tiles);
  int grid = int(tiles);
  a.lpt = persistent == 2 ? 1 : 0;
  a.o_tma = o_tma ? 1 : 0;
  if (persistent > 0) {
    int sms = 0;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) == cudaSuccess && sms > 0)
      grid = int(std::min<int64_t>(tiles, sms));
  }
  const cudaError_t e = kern->launch(tq, tk, tv, to, a, grid, stream);
  if (e != cudaSuccess) return device_error(e, "sm_90a attention launch", kern->name);
  LaunchResult r;
  r.path = kern->name;
  return r;
}

}  // namespace

int sm90_variant_count() { return kVariants; }

// Chosen from the benchmark on an H100 (bench/gpu/NOTES.md runs 13-14, bench/results/fa3_*):
// the fastest tested variant and launch per head dim, key length and masking. Variants: 0 serial,
// 1 overlap, 2 overlap + ping-pong, 3 ping-pong with wider key blocks.
int sm90_default_variant(int head_dim, int64_t seqlen_k, bool causal) {
  switch (head_dim) {
    case 64:
      if (causal) return seqlen_k <= 1024 ? 0 : 3;
      return seqlen_k <= 1024 ? 1 : 3;
    case 96:
      if (causal) return seqlen_k <= 4096 ? 2 : 1;
      return 1;
    case 128:
      return causal && seqlen_k <= 2048 ? 2 : 1;
    default: return seqlen_k <= 4096 ? 2 : 3;  // 192, 256
  }
}

// Persistent (one CTA per SM) pays where tiles are uniform (no causal mask): the next tile's
// loads hide this tile's epilogue. Causal tiles differ in cost: for short keys with head dim 64
// the heavy-first walk over all heads balances best (its K/V fit in L2); in the middle the
// plain walk still wins a little; for long keys the hardware's own block scheduling balances
// better than a static walk.
int sm90_default_persistent(int head_dim, int64_t seqlen_k, bool causal) {
  if (!causal) return 1;
  if (head_dim == 64) return seqlen_k <= 1024 ? 2 : seqlen_k <= 8192 ? 1 : 0;
  if (head_dim == 128) return seqlen_k > 2048 && seqlen_k <= 8192 ? 1 : 0;
  return 0;
}

std::string sm90_variant_name(int head_dim, bool bf16, int variant) {
  const sm90::Fa3Kernel* k = sm90::find_fa3_kernel(head_dim, bf16, variant);
  return k ? k->name : "not compiled";
}

std::string unsupported_reason(const AttentionParams& p, int cc_major, int cc_minor, Path path) {
  std::string why = common_reason(p);
  if (!why.empty()) return why;
  if (cc_major < 8) return "needs compute capability 8.0 or newer";
  if (path == Path::sm90) return sm90_reason(p, cc_major, cc_minor);
  if (path == Path::sm80) return sm80::sm80_reason(p, cc_major, cc_minor);
  return {};
}

LaunchResult attention_forward(const AttentionParams& p, cudaStream_t stream,
                               const LaunchOptions& options) {
  std::string why = common_reason(p);
  if (!why.empty()) return unsupported(why);
  if (p.batch == 0 || p.seqlen_q == 0 || p.heads_q == 0) return {};
  int device = 0;
  cudaError_t e = cudaGetDevice(&device);
  int major = 0, minor = 0;
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  if (e != cudaSuccess) return device_error(e, "no usable CUDA device", "none");
  if (major < 8) return unsupported("needs compute capability 8.0 or newer");

  bool use_sm90 = false;
  if (options.path == Path::automatic || options.path == Path::sm90) {
    why = sm90_reason(p, major, minor);
    if (why.empty() && !(aligned_to(p.q, 16) && aligned_to(p.k, 16) && aligned_to(p.v, 16)))
      why = "q/k/v base pointers are not 16-byte aligned (TMA)";
    if (why.empty() && !aligned_to(p.out, 4))
      why = "output pointer is not 4-byte aligned";
    if (why.empty()) use_sm90 = true;
    else if (options.path == Path::sm90) return unsupported(why);
  }
  if (use_sm90) return run_sm90(p, stream, options.sm90_variant, options.persistent, device);
  // The mma.sync kernel where the sm_90a one doesn't apply (cc 8.x, or Hopper head dims, strides
  // or pointers the sm_90a kernel can't take).
  if (options.path == Path::automatic || options.path == Path::sm80) {
    why = sm80::sm80_launch_reason(p, major, minor);
    if (why.empty()) return sm80::run_sm80(p, stream, device);
    if (options.path == Path::sm80) return unsupported(why);
  }
  e = launch_fallback_attention(p, stream);
  if (e != cudaSuccess) return device_error(e, "fallback attention launch", "fallback");
  LaunchResult r;
  r.path = "fallback";
  return r;
}

std::string describe_device(int device, std::string* name) {
  cudaDeviceProp prop{};
  cudaError_t e = cudaGetDeviceProperties(&prop, device);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA device: ") + cudaGetErrorString(e);
  }
  int drv = 0, rt = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  if (name) *name = prop.name;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s, sm_%d%d, %d SMs, driver %d.%d, runtime %d.%d", prop.name,
                prop.major, prop.minor, prop.multiProcessorCount, drv / 1000, (drv % 1000) / 10,
                rt / 1000, (rt % 1000) / 10);
  return buf;
}

}  // namespace pfa::kernels::cuda

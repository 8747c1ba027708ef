#include "fallback_attention.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace pfa::kernels::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kPerLane = kFallbackMaxHeadDim / 32;

__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

template <typename T>
__global__ void __launch_bounds__(kWarps * 32) fallback_kernel(const AttentionParams p) {
  const int lane = threadIdx.x % 32;
  const int64_t row_id = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int64_t rows = p.seqlen_q * p.heads_q * p.batch;
  if (row_id >= rows) return;
  const int64_t i = row_id % p.seqlen_q;
  const int64_t h = (row_id / p.seqlen_q) % p.heads_q;
  const int64_t b = row_id / (p.seqlen_q * p.heads_q);
  const int64_t hk = h / (p.heads_q / p.heads_kv);
  const int D = int(p.head_dim);
  const T* q = static_cast<const T*>(p.q) + b * p.q_stride[0] + i * p.q_stride[1] + h * p.q_stride[2];
  const T* k = static_cast<const T*>(p.k) + b * p.k_stride[0] + hk * p.k_stride[2];
  const T* v = static_cast<const T*>(p.v) + b * p.v_stride[0] + hk * p.v_stride[2];
  T* o = static_cast<T*>(p.out) + b * p.o_stride[0] + i * p.o_stride[1] + h * p.o_stride[2];

  float qr[kPerLane], acc[kPerLane];
#pragma unroll
  for (int e = 0; e < kPerLane; ++e) {
    const int d = lane + 32 * e;
    qr[e] = d < D ? to_float(q[d]) : 0.f;
    acc[e] = 0.f;
  }
  const float scale_log2 = p.softmax_scale * 1.4426950408889634f;
  int64_t last = p.seqlen_k - 1;
  if (p.causal) last = min(last, i + p.seqlen_k - p.seqlen_q);
  float m = -INFINITY, l = 0.f;
  for (int64_t j = 0; j <= last; ++j) {
    const T* kj = k + j * p.k_stride[1];
    float part = 0.f;
#pragma unroll
    for (int e = 0; e < kPerLane; ++e) {
      const int d = lane + 32 * e;
      if (d < D) part += qr[e] * to_float(kj[d]);
    }
#pragma unroll
    for (int off = 16; off > 0; off /= 2) part += __shfl_xor_sync(0xffffffffu, part, off);
    const float x = part * scale_log2;
    const float m_new = fmaxf(m, x);
    const float rs = exp2f(m - m_new);
    const float pj = exp2f(x - m_new);
    l = l * rs + pj;
    const T* vj = v + j * p.v_stride[1];
#pragma unroll
    for (int e = 0; e < kPerLane; ++e) {
      const int d = lane + 32 * e;
      if (d < D) acc[e] = acc[e] * rs + pj * to_float(vj[d]);
    }
    m = m_new;
  }
  const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
  for (int e = 0; e < kPerLane; ++e) {
    const int d = lane + 32 * e;
    if (d < D) o[d] = from_float<T>(acc[e] * inv);
  }
  if (p.lse != nullptr && lane == 0)
    p.lse[(b * p.heads_q + h) * p.seqlen_q + i] =
        l > 0.f ? (m + log2f(l)) * 0.69314718055994530942f : -INFINITY;
}

}  // namespace

cudaError_t launch_fallback_attention(const AttentionParams& p, cudaStream_t stream) {
  const int64_t rows = p.seqlen_q * p.heads_q * p.batch;
  const int64_t blocks = (rows + kWarps - 1) / kWarps;
  if (blocks > 0x7fffffff) return cudaErrorInvalidConfiguration;
  if (blocks == 0) return cudaSuccess;
  if (p.dtype == DType::bf16)
    fallback_kernel<__nv_bfloat16><<<unsigned(blocks), kWarps * 32, 0, stream>>>(p);
  else
    fallback_kernel<__half><<<unsigned(blocks), kWarps * 32, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace pfa::kernels::cuda

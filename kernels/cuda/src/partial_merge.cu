#include <pfa/kernels/cuda/partial_merge.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace pfa::kernels::cuda {
namespace {

// One warp per (batch, row, head); each lane walks head_dim in steps of 32. The merge moves about
// 10 bytes per element (fp32 accumulator read and written, the part read), so it is bandwidth-bound
// and small beside the attention it follows (whose FLOPs grow with the key count, not this).
constexpr int kWarps = 8;

__device__ __forceinline__ float load(const void* p, int64_t i, DType t) {
  return t == DType::bf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i])
                          : __half2float(static_cast<const __half*>(p)[i]);
}

__device__ __forceinline__ void store(void* p, int64_t i, DType t, float x) {
  if (t == DType::bf16) {
    static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(x);
  } else {
    static_cast<__half*>(p)[i] = __float2half_rn(x);
  }
}

__global__ void __launch_bounds__(kWarps * 32)
merge_kernel(const MergeAccumulator acc, const PartialResult part, bool first) {
  const int lane = threadIdx.x % 32;
  const int64_t id = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (id >= acc.batch * part.rows * acc.heads) return;
  const int64_t h = id % acc.heads;
  const int64_t r = (id / acc.heads) % part.rows;
  const int64_t b = id / (acc.heads * part.rows);
  const int64_t row = part.row_begin + r;
  const int64_t D = acc.head_dim;
  float* a = acc.out + ((b * acc.rows + row) * acc.heads + h) * D;
  const int64_t p0 = ((b * part.rows + r) * acc.heads + h) * D;
  float& a_lse = acc.lse[(b * acc.heads + h) * acc.rows + row];
  const float p_lse = part.lse[(b * acc.heads + h) * part.rows + r];
  const float old_lse = first ? -INFINITY : a_lse;
  // A side that saw no key (lse = -inf) weighs nothing; both empty leaves zeros and -inf.
  const float m = fmaxf(old_lse, p_lse);
  const float wa = m == -INFINITY ? 0.f : __expf(old_lse - m);
  const float wp = m == -INFINITY ? 0.f : __expf(p_lse - m);
  const float sum = wa + wp;
  const float inv = sum > 0.f ? 1.f / sum : 0.f;
  for (int64_t d = lane; d < D; d += 32) {
    const float prev = first ? 0.f : a[d];
    a[d] = (wa * prev + wp * load(part.out, p0 + d, part.dtype)) * inv;
  }
  if (lane == 0) a_lse = sum > 0.f ? m + __logf(sum) : -INFINITY;
}

struct OutView {
  void* out;
  int64_t stride[3];
  DType dtype;
  float* lse;
};

__global__ void __launch_bounds__(kWarps * 32)
write_kernel(const MergeAccumulator acc, const OutView o) {
  const int lane = threadIdx.x % 32;
  const int64_t id = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (id >= acc.batch * acc.rows * acc.heads) return;
  const int64_t h = id % acc.heads;
  const int64_t r = (id / acc.heads) % acc.rows;
  const int64_t b = id / (acc.heads * acc.rows);
  const float* a = acc.out + id * acc.head_dim;
  const int64_t o0 = b * o.stride[0] + r * o.stride[1] + h * o.stride[2];
  for (int64_t d = lane; d < acc.head_dim; d += 32) store(o.out, o0 + d, o.dtype, a[d]);
  if (lane == 0 && o.lse) {
    const int64_t l = (b * acc.heads + h) * acc.rows + r;
    o.lse[l] = acc.lse[l];
  }
}

unsigned blocks_for(int64_t warps) { return static_cast<unsigned>((warps + kWarps - 1) / kWarps); }

}  // namespace

cudaError_t merge_partial(const MergeAccumulator& acc, const PartialResult& part, bool first,
                          cudaStream_t stream) {
  const int64_t warps = acc.batch * part.rows * acc.heads;
  if (warps == 0) return cudaSuccess;
  merge_kernel<<<blocks_for(warps), kWarps * 32, 0, stream>>>(acc, part, first);
  return cudaGetLastError();
}

cudaError_t write_merged(const MergeAccumulator& acc, void* out, const int64_t out_stride[3],
                         DType dtype, float* lse, cudaStream_t stream) {
  const int64_t warps = acc.batch * acc.rows * acc.heads;
  if (warps == 0) return cudaSuccess;
  const OutView view{out, {out_stride[0], out_stride[1], out_stride[2]}, dtype, lse};
  write_kernel<<<blocks_for(warps), kWarps * 32, 0, stream>>>(acc, view);
  return cudaGetLastError();
}

}  // namespace pfa::kernels::cuda

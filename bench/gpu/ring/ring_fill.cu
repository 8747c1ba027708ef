#include "ring_fill.h"

#include <pfa/sequence_sharding.h>

#include <cuda_bf16.h>

namespace pfa::bench {
namespace {

// A fixed pseudo-random value in [-1, 1) for each element of the whole sequence, so a shard and
// the whole tensor on another GPU hold the same numbers without any copy between them.
__device__ float value_at(uint64_t seed, uint64_t index) {
  uint64_t x = (index + 1) * 0x9E3779B97F4A7C15ull ^ seed;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return float(x >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

__global__ void fill_kernel(__nv_bfloat16* out, int64_t batch, int64_t rows, int64_t heads,
                            int64_t dim, int ranks, int rank, uint64_t seed) {
  const int64_t n = batch * rows * heads * dim;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t d = i % dim, h = (i / dim) % heads, r = (i / (dim * heads)) % rows;
    const int64_t b = i / (dim * heads * rows);
    const int64_t g = ranks > 1 ? sharding::global_row(ranks, rank, rows, r) : r;
    const int64_t whole_rows = rows * (ranks > 1 ? ranks : 1);
    out[i] = __float2bfloat16_rn(value_at(seed, uint64_t(((b * whole_rows + g) * heads + h) * dim + d)));
  }
}

}  // namespace

cudaError_t fill_shard(void* out, int64_t batch, int64_t rows, int64_t heads, int64_t dim,
                       int ranks, int rank, uint64_t seed, cudaStream_t stream) {
  fill_kernel<<<1024, 256, 0, stream>>>(static_cast<__nv_bfloat16*>(out), batch, rows, heads, dim,
                                        ranks, rank, seed);
  return cudaGetLastError();
}

}  // namespace pfa::bench

// Deterministic bf16 inputs for the ring benchmark, filled on the GPU.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace pfa::bench {

// Fills `out` [batch, rows, heads, dim] bf16 with rank `rank`'s mirrored shard of a whole sequence
// (ranks = 1: the whole sequence itself) whose values depend only on the seed and the position.
cudaError_t fill_shard(void* out, int64_t batch, int64_t rows, int64_t heads, int64_t dim,
                       int ranks, int rank, uint64_t seed, cudaStream_t stream);

}  // namespace pfa::bench

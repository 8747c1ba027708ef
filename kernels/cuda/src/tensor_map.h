// Builds TMA tensor maps for [batch, seq, heads, head_dim] tensors without linking libcuda: the
// encoder is fetched from the driver at run time through the CUDA runtime.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <string>

namespace pfa::kernels::cuda {

// A 4-d map (head_dim, seq, head, batch) of 16-bit elements with a box_cols x box_rows box and a
// swizzle as wide as a box row (box_cols 64: 128-byte swizzle; 32: 64-byte); rows past the end
// read as zeros. `stride` is (batch, seq, head) in elements.
// Returns an empty string on success, else what went wrong.
std::string make_tensor_map_bshd(CUtensorMap* map, const void* base, bool bf16, int64_t batch,
                                 int64_t seq, int64_t heads, int64_t head_dim,
                                 const int64_t stride[3], int box_rows, int box_cols = 64);

}  // namespace pfa::kernels::cuda

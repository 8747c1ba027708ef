// Folding partial attention results together on the GPU: the log-sum-exp merge that lets one
// query block be computed against several key/value blocks separately (ring attention across
// GPUs). Same arithmetic as pfa::sharding::merge_row, in fp32. Work is queued on the caller's
// stream; nothing synchronises.
#pragma once

#include <pfa/kernels/attention_params.h>

#include <cuda_runtime_api.h>

#include <cstdint>

namespace pfa::kernels::cuda {

// An fp32 accumulator for the output rows of one call: out [batch, rows, heads, head_dim] and
// lse [batch, heads, rows], both contiguous.
struct MergeAccumulator {
  float* out = nullptr;
  float* lse = nullptr;
  int64_t batch = 0;
  int64_t rows = 0;
  int64_t heads = 0;
  int64_t head_dim = 0;
};

// A partial result for accumulator rows [row_begin, row_begin + rows): out contiguous
// [batch, rows, heads, head_dim] in `dtype` (fp16 or bf16), lse contiguous [batch, heads, rows].
struct PartialResult {
  const void* out = nullptr;
  const float* lse = nullptr;
  int64_t row_begin = 0;
  int64_t rows = 0;
  DType dtype = DType::bf16;
};

// acc := merge(acc, part) over the part's rows; `first` copies instead (the accumulator's
// previous contents are ignored for those rows).
cudaError_t merge_partial(const MergeAccumulator& acc, const PartialResult& part, bool first,
                          cudaStream_t stream);

// Writes the accumulator to `out` (dtype, element strides for batch, row and head; head_dim
// stride 1) and, when `lse` is not null, its log-sum-exp to lse [batch, heads, rows] contiguous.
cudaError_t write_merged(const MergeAccumulator& acc, void* out, const int64_t out_stride[3],
                         DType dtype, float* lse, cudaStream_t stream);

}  // namespace pfa::kernels::cuda

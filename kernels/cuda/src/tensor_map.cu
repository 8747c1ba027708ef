#include "tensor_map.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>

namespace pfa::kernels::cuda {
namespace {

using EncodeTiledFn = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*,
                                   const cuuint64_t*, const cuuint64_t*, const cuuint32_t*,
                                   const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                                   CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

EncodeTiledFn encoder() {
  static const EncodeTiledFn fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault,
                                         &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
      cudaGetLastError();  // clear, so later launches don't report this
      return static_cast<EncodeTiledFn>(nullptr);
    }
    return reinterpret_cast<EncodeTiledFn>(p);
  }();
  return fn;
}

}  // namespace

std::string make_tensor_map_bshd(CUtensorMap* map, const void* base, bool bf16, int64_t batch,
                                 int64_t seq, int64_t heads, int64_t head_dim,
                                 const int64_t stride[3], int box_rows, int box_cols) {
  if (box_cols != 64 && box_cols != 32) return "tensor-map box must be 64 or 32 columns wide";
  EncodeTiledFn encode = encoder();
  if (encode == nullptr) return "the driver has no cuTensorMapEncodeTiled";
  const cuuint64_t dims[4] = {cuuint64_t(head_dim), cuuint64_t(seq), cuuint64_t(heads),
                              cuuint64_t(batch)};
  // Byte strides of dims 1..3 (seq, head, batch). A size-1 dimension's stride is never used to
  // address anything, but must still be a multiple of 16: give it the tensor's whole extent.
  const int64_t el = 2;
  int64_t extent = head_dim * el;
  const int64_t sizes[3] = {seq, heads, batch};
  const int64_t strides_el[3] = {stride[1], stride[2], stride[0]};
  for (int i = 0; i < 3; ++i) extent = std::max(extent, (sizes[i] - 1) * strides_el[i] * el + head_dim * el);
  extent = (extent + 15) / 16 * 16;
  cuuint64_t strides[3];
  for (int i = 0; i < 3; ++i)
    strides[i] = sizes[i] == 1 ? cuuint64_t(extent) : cuuint64_t(strides_el[i] * el);
  const cuuint32_t box[4] = {cuuint32_t(box_cols), cuuint32_t(box_rows), 1, 1};
  const CUtensorMapSwizzle swizzle =
      box_cols == 64 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_64B;
  const cuuint32_t elem_strides[4] = {1, 1, 1, 1};
  const CUresult r = encode(map, bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
                            4, const_cast<void*>(base), dims, strides, box, elem_strides,
                            CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "cuTensorMapEncodeTiled failed (CUresult %d)", int(r));
    return buf;
  }
  return {};
}

}  // namespace pfa::kernels::cuda

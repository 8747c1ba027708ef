// Reading and writing rows of pfa's [batch, seq, heads, head_dim] tensors as fp32, whatever their
// dtype (fp32, fp16, bf16) and strides. The research backends compute in fp32 and keep their
// inputs' dtype only at the edges.
#pragma once

#include <pfa/kernels/attention_params.h>

#include <cstdint>
#include <cstring>

namespace pfa::research {

using kernels::AttentionParams;
using kernels::DType;

inline float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

// IEEE half via the compiler's _Float16 (GCC 12 has it on x86-64 in software or F16C).
inline float fp16_to_float(uint16_t h) {
  _Float16 x;
  std::memcpy(&x, &h, 2);
  return static_cast<float>(x);
}

inline uint16_t float_to_fp16(float f) {
  const _Float16 x = static_cast<_Float16>(f);
  uint16_t h;
  std::memcpy(&h, &x, 2);
  return h;
}

inline int64_t element_size(DType dtype) { return dtype == DType::fp32 ? 4 : 2; }

// Element (b, s, h, 0) of a tensor with element strides {batch, seq, head}.
inline const char* row_address(const void* base, DType dtype, const int64_t* stride, int64_t b,
                               int64_t s, int64_t h) {
  return static_cast<const char*>(base) +
         (b * stride[0] + s * stride[1] + h * stride[2]) * element_size(dtype);
}

// Copies `dim` elements starting at src into fp32 dst.
inline void load_row(const char* src, DType dtype, int64_t dim, float* dst) {
  switch (dtype) {
    case DType::fp32:
      std::memcpy(dst, src, static_cast<size_t>(dim) * 4);
      return;
    case DType::fp16:
      for (int64_t d = 0; d < dim; ++d) {
        uint16_t h;
        std::memcpy(&h, src + 2 * d, 2);
        dst[d] = fp16_to_float(h);
      }
      return;
    case DType::bf16:
      for (int64_t d = 0; d < dim; ++d) {
        uint16_t h;
        std::memcpy(&h, src + 2 * d, 2);
        dst[d] = bf16_to_float(h);
      }
      return;
  }
}

inline void store_row(const float* src, int64_t dim, DType dtype, char* dst) {
  switch (dtype) {
    case DType::fp32:
      std::memcpy(dst, src, static_cast<size_t>(dim) * 4);
      return;
    case DType::fp16:
      for (int64_t d = 0; d < dim; ++d) {
        const uint16_t h = float_to_fp16(src[d]);
        std::memcpy(dst + 2 * d, &h, 2);
      }
      return;
    case DType::bf16:
      for (int64_t d = 0; d < dim; ++d) {
        const uint16_t h = float_to_bf16(src[d]);
        std::memcpy(dst + 2 * d, &h, 2);
      }
      return;
  }
}

// Rows [0, seq) of head h in batch b as a dense fp32 [seq, dim] block.
inline void load_head(const void* base, DType dtype, const int64_t* stride, int64_t b, int64_t h,
                      int64_t seq, int64_t dim, float* dst) {
  for (int64_t s = 0; s < seq; ++s) load_row(row_address(base, dtype, stride, b, s, h), dtype, dim,
                                             dst + s * dim);
}

inline void store_out_row(const AttentionParams& p, int64_t b, int64_t s, int64_t h,
                          const float* src) {
  char* dst = const_cast<char*>(row_address(p.out, p.dtype, p.o_stride, b, s, h));
  store_row(src, p.head_dim, p.dtype, dst);
}

// Keys query row i may see: all of them, or i + seqlen_k - seqlen_q + 1 when causal (bottom-right
// aligned), clamped to [0, seqlen_k].
inline int64_t visible_keys(const AttentionParams& p, int64_t i) {
  if (!p.causal) return p.seqlen_k;
  const int64_t n = i + p.seqlen_k - p.seqlen_q + 1;
  return n < 0 ? 0 : (n > p.seqlen_k ? p.seqlen_k : n);
}

}  // namespace pfa::research

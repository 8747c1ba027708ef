// Shared pieces of the two bf16 paths (AVX512_BF16 dot products and AMX tiles): bf16 inputs,
// matrix products in bf16 with fp32 accumulation, softmax in fp32. Compiled only in files built
// with AVX-512 + AVX512_BF16 flags; internal linkage like the fp32 kernel.
//
// Packed layouts ("VNNI pairs": two consecutive reduction elements side by side in 32 bits, the
// operand layout of vdpbf16ps and tdpbf16ps):
//   K block: [dp/2][kBlockKeys][2]  -- pairs of head_dim for each key (B of S = Q K^T)
//   V block: [kBlockKeys/2][dp][2]  -- pairs of keys for each head_dim column (B of O += P V)
#pragma once

#include "avx512_vec.h"
#include "fp32_tile_kernel.h"

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <limits>

namespace pfa::kernels::cpu {
namespace {

void pack_block_bf16(const Plan& pl, int64_t b, int64_t hk, int64_t kb) {
  const AttentionParams& p = pl.p;
  const int64_t idx = pl.block_index(b, hk, kb);
  uint32_t* kp = static_cast<uint32_t*>(pl.kpack) + idx * pl.block_elems / 2;
  uint16_t* vp = static_cast<uint16_t*>(pl.vpack) + idx * pl.block_elems;
  const int64_t dp = pl.dp, d_real = p.head_dim;
  const uint16_t* kbase = static_cast<const uint16_t*>(p.k);
  const uint16_t* vbase = static_cast<const uint16_t*>(p.v);
  alignas(64) uint16_t row[kMaxHeadDim];
  for (int64_t jj = 0; jj < kBlockKeys; ++jj) {
    const int64_t j = kb * kBlockKeys + jj;
    std::memset(row, 0, sizeof(uint16_t) * dp);
    if (j < p.seqlen_k)
      std::memcpy(row, kbase + b * p.k_stride[0] + j * p.k_stride[1] + hk * p.k_stride[2],
                  sizeof(uint16_t) * d_real);
    for (int64_t d2 = 0; d2 < dp / 2; ++d2)
      kp[d2 * kBlockKeys + jj] = static_cast<uint32_t>(row[2 * d2]) |
                                 (static_cast<uint32_t>(row[2 * d2 + 1]) << 16);
    std::memset(row, 0, sizeof(uint16_t) * dp);
    if (j < p.seqlen_k)
      std::memcpy(row, vbase + b * p.v_stride[0] + j * p.v_stride[1] + hk * p.v_stride[2],
                  sizeof(uint16_t) * d_real);
    uint16_t* vrow = vp + (jj / 2) * dp * 2 + (jj & 1);
    for (int64_t d = 0; d < dp; ++d) vrow[2 * d] = row[d];
  }
}

// Loads `rows_compute` query rows as raw bf16 (rows past the real ones and columns past head_dim
// are zero) and resets the running state. Returns the number of key blocks the tile needs.
int64_t begin_tile_bf16(const Plan& pl, int64_t b, int64_t h, int64_t i0, int64_t rows,
                        int64_t rows_compute, Scratch& sc) {
  const AttentionParams& p = pl.p;
  const int64_t dp = pl.dp;
  const uint16_t* qbase = static_cast<const uint16_t*>(p.q);
  for (int64_t r = 0; r < rows_compute; ++r) {
    uint16_t* dst = sc.q16 + r * dp;
    std::memset(dst, 0, sizeof(uint16_t) * dp);
    if (r < rows)
      std::memcpy(dst, qbase + b * p.q_stride[0] + (i0 + r) * p.q_stride[1] + h * p.q_stride[2],
                  sizeof(uint16_t) * p.head_dim);
    std::memset(sc.o + r * dp, 0, sizeof(float) * dp);
    std::memset(sc.lv + 16 * r, 0, sizeof(float) * 16);
    sc.m[r] = -std::numeric_limits<float>::infinity();
    sc.l[r] = 0.0f;
  }
  const int64_t last_end = pl.visible_end(i0 + rows - 1);
  return (last_end + kBlockKeys - 1) / kBlockKeys;
}

// 2^x with a degree-4 polynomial: 4e-5 relative, below the bf16 rounding (2^-9) the
// probabilities get anyway; one FMA less than the fp32 path's exp2 on the critical softmax.
inline __m512 exp2_bf16_grade(__m512 x) {
  const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-126.0f), _CMP_GE_OQ);
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(9.6181291076284772e-03f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504108664821580e-02f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022650695910071e-01f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718055994531e-01f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_maskz_scalef_ps(live, p, n);
}

// Online softmax over one block of raw scores (q . k, not yet scaled) for `rows` rows: scales
// into base-2 units, masks, writes bf16 probabilities to p16 ([rows][kBlockKeys]) and the rescale
// of the previous output to alpha. Returns true when some alpha differs from 1.
//
// The running max moves lazily: only when a score exceeds it by more than kLazyMax (base-2
// units), so probabilities stay below 2^kLazyMax and most blocks need neither a horizontal max
// nor an output rescale. The running sum stays a 16-lane vector per row (lv), reduced once at
// the end of the tile by finish_sums().
constexpr float kLazyMax = 8.0f;

bool softmax_block_bf16(const Plan& pl, int64_t i0, int64_t j0, int64_t rows, bool need_mask,
                        const float* s, uint16_t* p16, float* m, float* lv, float* alpha) {
  static_assert(kBlockKeys == 64, "the softmax keeps one row of a block in four registers");
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const __m512 scale = _mm512_set1_ps(pl.q_scale);
  bool rescale = false;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = s + r * kBlockKeys;
    __m512 x[4];
    for (int c = 0; c < 4; ++c) x[c] = _mm512_mul_ps(_mm512_loadu_ps(row + 16 * c), scale);
    if (need_mask) {
      const int64_t valid = pl.visible_end(i0 + r) - j0;
      for (int c = 0; c < 4; ++c) {
        const int64_t n = valid - 16 * c;
        const __mmask16 keep = n >= 16 ? __mmask16(0xffff)
                               : n <= 0 ? __mmask16(0)
                                        : static_cast<__mmask16>((1u << n) - 1);
        x[c] = _mm512_mask_mov_ps(_mm512_set1_ps(kNegInf), keep, x[c]);
      }
    }
    const float m_old = m[r];
    const __m512 limit = _mm512_set1_ps(m_old + kLazyMax);  // -inf while nothing was seen
    const __mmask16 over = _mm512_cmp_ps_mask(x[0], limit, _CMP_GT_OQ) |
                           _mm512_cmp_ps_mask(x[1], limit, _CMP_GT_OQ) |
                           _mm512_cmp_ps_mask(x[2], limit, _CMP_GT_OQ) |
                           _mm512_cmp_ps_mask(x[3], limit, _CMP_GT_OQ);
    float m_new = m_old;
    float a = 1.0f;
    __m512 sum = _mm512_loadu_ps(lv + 16 * r);
    if (over != 0) {
      m_new = _mm512_reduce_max_ps(
          _mm512_max_ps(_mm512_max_ps(x[0], x[1]), _mm512_max_ps(x[2], x[3])));
      a = m_old == kNegInf ? 0.0f : std::exp2(m_old - m_new);
      sum = _mm512_mul_ps(sum, _mm512_set1_ps(a));
      rescale = true;
      m[r] = m_new;
    }
    alpha[r] = a;
    uint16_t* prow = p16 + r * kBlockKeys;
    if (m_new == kNegInf) {  // nothing visible yet in this row
      std::memset(prow, 0, sizeof(uint16_t) * kBlockKeys);
      continue;
    }
    const __m512 mv = _mm512_set1_ps(m_new);
    for (int c = 0; c < 4; c += 2) {
      const __m512 e0 = exp2_bf16_grade(_mm512_sub_ps(x[c], mv));
      const __m512 e1 = exp2_bf16_grade(_mm512_sub_ps(x[c + 1], mv));
      sum = _mm512_add_ps(sum, _mm512_add_ps(e0, e1));
      // cvtne2ps puts its second operand in the low half.
      _mm512_storeu_si512(prow + 16 * c, (__m512i)_mm512_cvtne2ps_pbh(e1, e0));
    }
    _mm512_storeu_ps(lv + 16 * r, sum);
  }
  return rescale;
}

// Reduces the per-row vector sums into l before end_tile.
inline void finish_sums(int64_t rows, const float* lv, float* l) {
  for (int64_t r = 0; r < rows; ++r) l[r] = _mm512_reduce_add_ps(_mm512_loadu_ps(lv + 16 * r));
}

// O[r] *= alpha[r] for the rows whose running max moved.
[[maybe_unused]] void rescale_rows(int64_t rows, int64_t dp, float* o, const float* alpha) {
  for (int64_t r = 0; r < rows; ++r) {
    if (alpha[r] == 1.0f) continue;
    const __m512 a = _mm512_set1_ps(alpha[r]);
    for (int64_t d = 0; d < dp; d += 16)
      _mm512_storeu_ps(o + r * dp + d, _mm512_mul_ps(_mm512_loadu_ps(o + r * dp + d), a));
  }
}

// end_tile reads m in base-2 units and l; it is shared with the fp32 kernel.

}  // namespace
}  // namespace pfa::kernels::cpu

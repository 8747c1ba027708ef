// AVX512_BF16 path for bf16: vdpbf16ps multiplies pairs of bf16 and accumulates in fp32, so each
// instruction does twice the work of an fp32 FMA. Same 6x64 register blocking as the AVX-512 fp32
// path, operands in the packed VNNI-pair layouts of bf16_tile_kernel.h.
#include "bf16_tile_kernel.h"

#include <immintrin.h>

namespace pfa::kernels::cpu {
namespace {

constexpr int kRowsBlock = 6;
constexpr int kColsBlock = 4;

inline __m512bh as_bh(__m512i x) { return (__m512bh)x; }

// S[R rows][64 keys] from query pairs q32 ([rows][dp/2]) and K pairs kp ([dp/2][64]).
template <int R>
inline void qk_micro_bf16(const uint32_t* q32, int64_t half_dp, const uint32_t* kp, float* s) {
  __m512 acc[R][kColsBlock];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < kColsBlock; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t d2 = 0; d2 < half_dp; ++d2) {
    __m512i qb[R];
    for (int r = 0; r < R; ++r) qb[r] = _mm512_set1_epi32(static_cast<int>(q32[r * half_dp + d2]));
    for (int c = 0; c < kColsBlock; ++c) {
      const __m512i kv = _mm512_loadu_si512(kp + d2 * kBlockKeys + 16 * c);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], as_bh(qb[r]), as_bh(kv));
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < kColsBlock; ++c) _mm512_storeu_ps(s + r * kBlockKeys + 16 * c, acc[r][c]);
}

template <int R>
inline void qk_tail_bf16(int64_t rows, const uint32_t* q32, int64_t half_dp, const uint32_t* kp,
                         float* s) {
  if constexpr (R > 0) {
    if (rows == R) return qk_micro_bf16<R>(q32, half_dp, kp, s);
    qk_tail_bf16<R - 1>(rows, q32, half_dp, kp, s);
  }
}

// O[R rows][C vectors] = alpha * O + P . V over key pairs; p32 rows hold 32 key pairs.
template <int R, int C>
inline void pv_micro_bf16(const uint32_t* p32, int64_t pairs, const uint32_t* vp, int64_t dp,
                          float* o, const float* alpha) {
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r) {
    const __m512 a = _mm512_set1_ps(alpha[r]);
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_mul_ps(_mm512_loadu_ps(o + r * dp + 16 * c), a);
  }
  for (int64_t jp = 0; jp < pairs; ++jp) {
    __m512i pb[R];
    for (int r = 0; r < R; ++r)
      pb[r] = _mm512_set1_epi32(static_cast<int>(p32[r * (kBlockKeys / 2) + jp]));
    for (int c = 0; c < C; ++c) {
      const __m512i vv = _mm512_loadu_si512(vp + jp * dp + 16 * c);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], as_bh(pb[r]), as_bh(vv));
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(o + r * dp + 16 * c, acc[r][c]);
}

template <int R, int C>
inline void pv_cols_tail_bf16(int64_t cols, const uint32_t* p32, int64_t pairs, const uint32_t* vp,
                              int64_t dp, float* o, const float* alpha) {
  if constexpr (C > 0) {
    if (cols == C) return pv_micro_bf16<R, C>(p32, pairs, vp, dp, o, alpha);
    pv_cols_tail_bf16<R, C - 1>(cols, p32, pairs, vp, dp, o, alpha);
  }
}

template <int R>
inline void pv_rows_bf16(const uint32_t* p32, int64_t pairs, const uint32_t* vp, int64_t dp,
                         float* o, const float* alpha) {
  const int64_t nvec = dp / 16;
  int64_t c = 0;
  for (; c + kColsBlock <= nvec; c += kColsBlock)
    pv_micro_bf16<R, kColsBlock>(p32, pairs, vp + 16 * c, dp, o + 16 * c, alpha);
  if (c < nvec)
    pv_cols_tail_bf16<R, kColsBlock - 1>(nvec - c, p32, pairs, vp + 16 * c, dp, o + 16 * c, alpha);
}

template <int R>
inline void pv_rows_tail_bf16(int64_t rows, const uint32_t* p32, int64_t pairs, const uint32_t* vp,
                              int64_t dp, float* o, const float* alpha) {
  if constexpr (R > 0) {
    if (rows == R) return pv_rows_bf16<R>(p32, pairs, vp, dp, o, alpha);
    pv_rows_tail_bf16<R - 1>(rows, p32, pairs, vp, dp, o, alpha);
  }
}

void run_tile_avx512_bf16(const Plan& pl, int64_t b, int64_t h, int64_t qt, Scratch& sc) {
  const AttentionParams& p = pl.p;
  const int64_t i0 = qt * pl.tile_rows;
  const int64_t rows = min_i64(pl.tile_rows, p.seqlen_q - i0);
  const int64_t hk = h / pl.group;
  const int64_t dp = pl.dp, half_dp = dp / 2;
  const int64_t n_blocks = begin_tile_bf16(pl, b, h, i0, rows, rows, sc);
  const int64_t first_end = pl.visible_end(i0);
  const int64_t last_end = pl.visible_end(i0 + rows - 1);
  const uint32_t* q32 = reinterpret_cast<const uint32_t*>(sc.q16);
  const uint32_t* p32 = reinterpret_cast<const uint32_t*>(sc.p16);
  for (int64_t kb = 0; kb < n_blocks; ++kb) {
    const int64_t idx = pl.block_index(b, hk, kb);
    const uint32_t* kp = static_cast<const uint32_t*>(pl.kpack) + idx * pl.block_elems / 2;
    const uint32_t* vp = static_cast<const uint32_t*>(pl.vpack) + idx * pl.block_elems / 2;
    const int64_t j0 = kb * kBlockKeys;
    int64_t r = 0;
    for (; r + kRowsBlock <= rows; r += kRowsBlock)
      qk_micro_bf16<kRowsBlock>(q32 + r * half_dp, half_dp, kp, sc.s + r * kBlockKeys);
    if (r < rows)
      qk_tail_bf16<kRowsBlock - 1>(rows - r, q32 + r * half_dp, half_dp, kp, sc.s + r * kBlockKeys);
    const bool need_mask = j0 + kBlockKeys > first_end;
    softmax_block_bf16(pl, i0, j0, rows, need_mask, sc.s, sc.p16, sc.m, sc.lv, sc.alpha);
    const int64_t pairs = (min_i64(kBlockKeys, last_end - j0) + 1) / 2;
    r = 0;
    for (; r + kRowsBlock <= rows; r += kRowsBlock)
      pv_rows_bf16<kRowsBlock>(p32 + r * (kBlockKeys / 2), pairs, vp, dp, sc.o + r * dp,
                               sc.alpha + r);
    if (r < rows)
      pv_rows_tail_bf16<kRowsBlock - 1>(rows - r, p32 + r * (kBlockKeys / 2), pairs, vp, dp,
                                        sc.o + r * dp, sc.alpha + r);
  }
  finish_sums(rows, sc.lv, sc.l);
  end_tile<Avx512Vec>(pl, b, h, i0, rows, sc);
}

}  // namespace

const KernelOps kAvx512Bf16Ops = {32, 1, sizeof(uint16_t), &pack_block_bf16,
                                  &run_tile_avx512_bf16};

}  // namespace pfa::kernels::cpu

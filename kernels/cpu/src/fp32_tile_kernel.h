// The fp32 tile kernel, written once over a vector type V and compiled in each instruction-set
// file (scalar, AVX2, AVX-512) with that file's flags. Everything here has internal linkage so
// the copies built with different flags never merge at link time.
//
// V provides: Reg, kWidth, zero(), set1(f), load(p), store(p, r), fmadd(a, b, c), mul(a, b),
// max(a, b), exp2(r) (0 for inputs below -126), reduce_max(r), reduce_add(r), kRows/kCols (the
// register block of the micro-kernels) and row conversion helpers to_float_row / from_float_row.
#pragma once

#include "tile_plan.h"

#include <cmath>
#include <cstdint>
#include <limits>

namespace pfa::kernels::cpu {
namespace {

inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

// S[r][c] = sum_d Q[r][d] * Kt[d][c] for R rows and C vectors of columns.
template <class V, int R, int C>
inline void qk_micro(const float* q, int64_t dp, const float* kt, float* s) {
  typename V::Reg acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = V::zero();
  for (int64_t d = 0; d < dp; ++d) {
    const float* krow = kt + d * kBlockKeys;
    typename V::Reg qb[R];
    for (int r = 0; r < R; ++r) qb[r] = V::set1(q[r * dp + d]);
    for (int c = 0; c < C; ++c) {
      const typename V::Reg kv = V::load(krow + c * V::kWidth);
      for (int r = 0; r < R; ++r) acc[r][c] = V::fmadd(qb[r], kv, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) V::store(s + r * kBlockKeys + c * V::kWidth, acc[r][c]);
}

// O[r][c] = alpha[r] * O[r][c] + sum_j P[r][j] * Vb[j][c] for R rows and C vectors of head_dim.
template <class V, int R, int C>
inline void pv_micro(const float* p, int64_t nj, const float* vb, int64_t dp, float* o,
                     const float* alpha) {
  typename V::Reg acc[R][C];
  for (int r = 0; r < R; ++r) {
    const typename V::Reg a = V::set1(alpha[r]);
    for (int c = 0; c < C; ++c) acc[r][c] = V::mul(V::load(o + r * dp + c * V::kWidth), a);
  }
  for (int64_t j = 0; j < nj; ++j) {
    const float* vrow = vb + j * dp;
    typename V::Reg pb[R];
    for (int r = 0; r < R; ++r) pb[r] = V::set1(p[r * kBlockKeys + j]);
    for (int c = 0; c < C; ++c) {
      const typename V::Reg vv = V::load(vrow + c * V::kWidth);
      for (int r = 0; r < R; ++r) acc[r][c] = V::fmadd(pb[r], vv, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) V::store(o + r * dp + c * V::kWidth, acc[r][c]);
}

// Dispatch of a remainder of rows (1..R) to the matching instantiation.
template <class V, int R>
inline void qk_rows_tail(int64_t rows, const float* q, int64_t dp, const float* kt, float* s) {
  if constexpr (R > 0) {
    if (rows == R) return qk_micro<V, R, V::kCols>(q, dp, kt, s);
    qk_rows_tail<V, R - 1>(rows, q, dp, kt, s);
  }
}

template <class V>
void qk_block(int64_t rows, const float* q, int64_t dp, const float* kt, float* s) {
  constexpr int64_t kChunk = V::kCols * V::kWidth;
  static_assert(kBlockKeys % kChunk == 0, "column chunk must divide the key block");
  for (int64_t c0 = 0; c0 < kBlockKeys; c0 += kChunk) {
    int64_t r = 0;
    for (; r + V::kRows <= rows; r += V::kRows)
      qk_micro<V, V::kRows, V::kCols>(q + r * dp, dp, kt + c0, s + r * kBlockKeys + c0);
    if (r < rows) qk_rows_tail<V, V::kRows - 1>(rows - r, q + r * dp, dp, kt + c0,
                                                s + r * kBlockKeys + c0);
  }
}

template <class V, int R, int C>
inline void pv_cols_tail(int64_t cols, const float* p, int64_t nj, const float* vb, int64_t dp,
                         float* o, const float* alpha) {
  if constexpr (C > 0) {
    if (cols == C) return pv_micro<V, R, C>(p, nj, vb, dp, o, alpha);
    pv_cols_tail<V, R, C - 1>(cols, p, nj, vb, dp, o, alpha);
  }
}

template <class V, int R>
inline void pv_rows(const float* p, int64_t nj, const float* vb, int64_t dp, float* o,
                    const float* alpha) {
  const int64_t nvec = dp / V::kWidth;
  int64_t c = 0;
  for (; c + V::kCols <= nvec; c += V::kCols)
    pv_micro<V, R, V::kCols>(p, nj, vb + c * V::kWidth, dp, o + c * V::kWidth, alpha);
  if (c < nvec)
    pv_cols_tail<V, R, V::kCols - 1>(nvec - c, p, nj, vb + c * V::kWidth, dp, o + c * V::kWidth,
                                     alpha);
}

template <class V, int R>
inline void pv_rows_tail(int64_t rows, const float* p, int64_t nj, const float* vb, int64_t dp,
                         float* o, const float* alpha) {
  if constexpr (R > 0) {
    if (rows == R) return pv_rows<V, R>(p, nj, vb, dp, o, alpha);
    pv_rows_tail<V, R - 1>(rows, p, nj, vb, dp, o, alpha);
  }
}

template <class V>
void pv_block(int64_t rows, const float* p, int64_t nj, const float* vb, int64_t dp, float* o,
              const float* alpha) {
  int64_t r = 0;
  for (; r + V::kRows <= rows; r += V::kRows)
    pv_rows<V, V::kRows>(p + r * kBlockKeys, nj, vb, dp, o + r * dp, alpha + r);
  if (r < rows)
    pv_rows_tail<V, V::kRows - 1>(rows - r, p + r * kBlockKeys, nj, vb, dp, o + r * dp, alpha + r);
}

// Online softmax over one block of scores (base-2 units) for `rows` rows. Keys at or beyond
// `valid[r]` (relative to the block) are masked. Leaves probabilities in s and the rescale of the
// previous output in alpha.
template <class V>
void softmax_block(const Plan& pl, int64_t i0, int64_t j0, int64_t rows, bool need_mask, float* s,
                   float* m, float* l, float* alpha) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < rows; ++r) {
    float* row = s + r * kBlockKeys;
    if (need_mask) {
      const int64_t valid = pl.visible_end(i0 + r) - j0;
      for (int64_t j = valid < 0 ? 0 : valid; j < kBlockKeys; ++j) row[j] = kNegInf;
    }
    typename V::Reg mx = V::load(row);
    for (int64_t j = V::kWidth; j < kBlockKeys; j += V::kWidth) mx = V::max(mx, V::load(row + j));
    const float block_max = V::reduce_max(mx);
    // The running max moves only when a score passes it by more than 8 (base-2 units): the
    // probabilities stay below 2^8, and most blocks keep alpha = 1 with no exp2 for it.
    const float m_new = block_max > m[r] + 8.0f ? block_max : m[r];
    if (m_new == kNegInf) {  // nothing visible yet in this row: contributes nothing
      for (int64_t j = 0; j < kBlockKeys; ++j) row[j] = 0.0f;
      alpha[r] = 1.0f;
      continue;
    }
    const typename V::Reg mv = V::set1(m_new);
    typename V::Reg sum = V::zero();
    for (int64_t j = 0; j < kBlockKeys; j += V::kWidth) {
      const typename V::Reg e = V::exp2(V::sub(V::load(row + j), mv));
      V::store(row + j, e);
      sum = V::add(sum, e);
    }
    const float a = m_new == m[r] ? 1.0f : (m[r] == kNegInf ? 0.0f : std::exp2(m[r] - m_new));
    l[r] = l[r] * a + V::reduce_add(sum);
    m[r] = m_new;
    alpha[r] = a;
  }
}

// Packs key/value block kb of (b, hk): K transposed into kt [dp][kBlockKeys], V into
// vb [kBlockKeys][dp], both in fp32 with zeros past head_dim and past the last key.
template <class V>
void pack_block_into(const Plan& pl, int64_t b, int64_t hk, int64_t kb, float* kt, float* vb) {
  const AttentionParams& p = pl.p;
  const int64_t dp = pl.dp, d_real = p.head_dim;
  alignas(64) float row[kMaxHeadDim];
  // Columns past the last key are left as they are: their scores are masked to -inf before the
  // softmax reads them and P.V stops at the last key, so filling them would only cost stores
  // (three quarters of the block for a 16-key sequence).
  const int64_t n = min_i64(kBlockKeys, p.seqlen_k - kb * kBlockKeys);
  for (int64_t jj = 0; jj < n; ++jj) {
    const int64_t j = kb * kBlockKeys + jj;
    V::to_float_row(p.dtype, p.k, b * p.k_stride[0] + j * p.k_stride[1] + hk * p.k_stride[2], row,
                    d_real, 1.0f);
    for (int64_t d = 0; d < d_real; ++d) kt[d * kBlockKeys + jj] = row[d];
    for (int64_t d = d_real; d < dp; ++d) kt[d * kBlockKeys + jj] = 0.0f;
    V::to_float_row(p.dtype, p.v, b * p.v_stride[0] + j * p.v_stride[1] + hk * p.v_stride[2],
                    vb + jj * dp, d_real, 1.0f);
    for (int64_t d = d_real; d < dp; ++d) vb[jj * dp + d] = 0.0f;
  }
}

template <class V>
void pack_block_fp32(const Plan& pl, int64_t b, int64_t hk, int64_t kb) {
  const int64_t idx = pl.block_index(b, hk, kb);
  pack_block_into<V>(pl, b, hk, kb, static_cast<float*>(pl.kpack) + idx * pl.block_elems,
                     static_cast<float*>(pl.vpack) + idx * pl.block_elems);
}

// Loads the query tile (scaled into base-2 units), resets the running state, and returns the
// number of key blocks the tile needs (0 when every row is fully masked).
template <class V>
int64_t begin_tile(const Plan& pl, int64_t b, int64_t h, int64_t i0, int64_t rows, Scratch& sc) {
  const AttentionParams& p = pl.p;
  const int64_t dp = pl.dp;
  for (int64_t r = 0; r < rows; ++r) {
    V::to_float_row(p.dtype, p.q, b * p.q_stride[0] + (i0 + r) * p.q_stride[1] + h * p.q_stride[2],
                    sc.q + r * dp, p.head_dim, pl.q_scale);
    for (int64_t d = p.head_dim; d < dp; ++d) sc.q[r * dp + d] = 0.0f;
    for (int64_t d = 0; d < dp; ++d) sc.o[r * dp + d] = 0.0f;
    sc.m[r] = -std::numeric_limits<float>::infinity();
    sc.l[r] = 0.0f;
  }
  const int64_t last_end = pl.visible_end(i0 + rows - 1);
  return (last_end + kBlockKeys - 1) / kBlockKeys;
}

// Normalises the output rows, writes them in the caller's dtype and layout, and writes the LSE.
template <class V>
void end_tile(const Plan& pl, int64_t b, int64_t h, int64_t i0, int64_t rows, const Scratch& sc) {
  const AttentionParams& p = pl.p;
  constexpr float kLn2 = 0.693147180559945309f;
  for (int64_t r = 0; r < rows; ++r) {
    const float l = sc.l[r];
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;  // a row that saw no key is zeros
    V::from_float_row(p.dtype, sc.o + r * pl.dp,
                      p.out, b * p.o_stride[0] + (i0 + r) * p.o_stride[1] + h * p.o_stride[2],
                      p.head_dim, inv);
    if (p.lse != nullptr) {
      p.lse[(b * p.heads_q + h) * p.seqlen_q + i0 + r] =
          l > 0.0f ? (sc.m[r] + std::log2(l)) * kLn2 : -std::numeric_limits<float>::infinity();
    }
  }
}

template <class V>
void run_tile_fp32(const Plan& pl, int64_t b, int64_t h, int64_t qt, Scratch& sc) {
  const AttentionParams& p = pl.p;
  const int64_t i0 = qt * pl.tile_rows;
  const int64_t rows = min_i64(pl.tile_rows, p.seqlen_q - i0);
  const int64_t hk = h / pl.group;
  const int64_t n_blocks = begin_tile<V>(pl, b, h, i0, rows, sc);
  const int64_t first_end = pl.visible_end(i0);
  const int64_t last_end = pl.visible_end(i0 + rows - 1);
  for (int64_t kb = 0; kb < n_blocks; ++kb) {
    const int64_t idx = pl.block_index(b, hk, kb);
    const float* kt = static_cast<const float*>(pl.kpack) + idx * pl.block_elems;
    const float* vb = static_cast<const float*>(pl.vpack) + idx * pl.block_elems;
    const int64_t j0 = kb * kBlockKeys;
    qk_block<V>(rows, sc.q, pl.dp, kt, sc.s);
    const bool need_mask = j0 + kBlockKeys > first_end;
    softmax_block<V>(pl, i0, j0, rows, need_mask, sc.s, sc.m, sc.l, sc.alpha);
    // Keys past the last row's horizon have zero probability in every row: skip them.
    const int64_t nj = min_i64(kBlockKeys, last_end - j0);
    pv_block<V>(rows, sc.s, nj, vb, pl.dp, sc.o, sc.alpha);
  }
  end_tile<V>(pl, b, h, i0, rows, sc);
}

// Scores of a few query rows against key block kb read in place, row by row: a dot product and a
// horizontal sum per (row, key). For one to four rows this is cheaper than transposing the block
// for qk_block. Also packs the value block into vb.
template <class V>
void qk_direct_pack_v(const Plan& pl, int64_t b, int64_t hk, int64_t kb, int64_t rows,
                      const float* q, float* s, float* vb) {
  const AttentionParams& p = pl.p;
  const int64_t dp = pl.dp, d_real = p.head_dim;
  alignas(64) float krow[kMaxHeadDim];
  for (int64_t jj = 0; jj < kBlockKeys; ++jj) {
    const int64_t j = kb * kBlockKeys + jj;
    if (j >= p.seqlen_k) break;  // the rest is masked before it is read (see pack_block_into)
    V::to_float_row(p.dtype, p.k, b * p.k_stride[0] + j * p.k_stride[1] + hk * p.k_stride[2],
                    krow, d_real, 1.0f);
    for (int64_t d = d_real; d < dp; ++d) krow[d] = 0.0f;
    for (int64_t r = 0; r < rows; ++r) {
      typename V::Reg acc = V::zero();
      for (int64_t d = 0; d < dp; d += V::kWidth) {
        acc = V::fmadd(V::load(q + r * dp + d), V::load(krow + d), acc);
      }
      s[r * kBlockKeys + jj] = V::reduce_add(acc);
    }
    V::to_float_row(p.dtype, p.v, b * p.v_stride[0] + j * p.v_stride[1] + hk * p.v_stride[2],
                    vb + jj * dp, d_real, 1.0f);
    for (int64_t d = d_real; d < dp; ++d) vb[jj * dp + d] = 0.0f;
  }
}

// Decode: the rows of all `group` query heads of key/value head hk (group x seqlen_q rows, at
// most kMaxTileRows) walk the keys together, so each key/value block is read from the caller's
// memory once, packed into a block-sized buffer that stays in cache, and used by every row. The
// prefill path instead packs all of K/V into a second copy first, which for a decode step (a
// memory-bound call) triples the memory traffic.
template <class V>
void run_decode_fp32(const Plan& pl, int64_t b, int64_t hk, Scratch& sc, float* kt, float* vb) {
  const AttentionParams& p = pl.p;
  const int64_t lq = p.seqlen_q, rows = pl.group * lq, dp = pl.dp;
  auto head_view = [&](int64_t g) {
    Scratch v = sc;
    v.q = sc.q + g * lq * dp;
    v.o = sc.o + g * lq * dp;
    v.m = sc.m + g * lq;
    v.l = sc.l + g * lq;
    return v;
  };
  int64_t n_blocks = 0;
  for (int64_t g = 0; g < pl.group; ++g) {
    Scratch v = head_view(g);
    n_blocks = begin_tile<V>(pl, b, hk * pl.group + g, 0, lq, v);  // same for every head
  }
  const int64_t first_end = pl.visible_end(0), last_end = pl.visible_end(lq - 1);
  for (int64_t kb = 0; kb < n_blocks; ++kb) {
    const int64_t j0 = kb * kBlockKeys;
    if (rows <= 4) {
      qk_direct_pack_v<V>(pl, b, hk, kb, rows, sc.q, sc.s, vb);
    } else {
      pack_block_into<V>(pl, b, hk, kb, kt, vb);
      qk_block<V>(rows, sc.q, dp, kt, sc.s);
    }
    const bool need_mask = j0 + kBlockKeys > first_end;
    for (int64_t g = 0; g < pl.group; ++g) {
      softmax_block<V>(pl, 0, j0, lq, need_mask, sc.s + g * lq * kBlockKeys, sc.m + g * lq,
                       sc.l + g * lq, sc.alpha + g * lq);
    }
    pv_block<V>(rows, sc.s, min_i64(kBlockKeys, last_end - j0), vb, dp, sc.o, sc.alpha);
  }
  for (int64_t g = 0; g < pl.group; ++g) end_tile<V>(pl, b, hk * pl.group + g, 0, lq, head_view(g));
}

}  // namespace
}  // namespace pfa::kernels::cpu

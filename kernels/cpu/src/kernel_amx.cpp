// AMX path for bf16: both matrix products on tiles (tdpbf16ps, 16x16 fp32 results from 16x32
// bf16 operands), softmax with AVX-512. Query tiles are processed as pairs of 16-row tiles so
// each loaded K (or V) tile feeds two products: 4 accumulator tiles + 2 A + 2 B = all 8 tiles.
#include "bf16_tile_kernel.h"

#include <immintrin.h>

namespace pfa::kernels::cpu {
namespace {

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Every tile is 16 rows x 64 bytes: the same shape serves both products.
void configure_tiles() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  _tile_loadconfig(&cfg);
}

// S[32 rows][64 keys] = Q[32][dp] . K^T, raw (unscaled) scores.
inline void qk_pair(const uint16_t* q16, int64_t dp, const uint16_t* kp, float* s) {
  const int64_t q_stride = dp * 2;              // bytes per query row
  constexpr int64_t k_stride = kBlockKeys * 4;  // bytes per packed pair-row of K
  for (int64_t kh = 0; kh < kBlockKeys; kh += 32) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int64_t c = 0; c < dp; c += 32) {
      const uint16_t* kc = kp + (c / 2) * kBlockKeys * 2 + kh * 2;
      _tile_loadd(4, q16 + c, q_stride);
      _tile_loadd(5, q16 + 16 * dp + c, q_stride);
      _tile_loadd(6, kc, k_stride);
      _tile_loadd(7, kc + 32, k_stride);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    constexpr int64_t s_stride = kBlockKeys * 4;
    _tile_stored(0, s + kh, s_stride);
    _tile_stored(1, s + kh + 16, s_stride);
    _tile_stored(2, s + 16 * kBlockKeys + kh, s_stride);
    _tile_stored(3, s + 16 * kBlockKeys + kh + 16, s_stride);
  }
}

// O[32 rows][dp] += P[32][nj keys] . V[nj][dp], accumulating straight into the fp32 output.
inline void pv_pair(const uint16_t* p16, int64_t nj, const uint16_t* vp, int64_t dp, float* o) {
  const int64_t o_stride = dp * 4;       // bytes per output row
  const int64_t v_stride = dp * 4;       // bytes per packed key-pair row of V
  constexpr int64_t p_stride = kBlockKeys * 2;
  for (int64_t dc = 0; dc < dp; dc += 32) {
    _tile_loadd(0, o + dc, o_stride);
    _tile_loadd(1, o + dc + 16, o_stride);
    _tile_loadd(2, o + 16 * dp + dc, o_stride);
    _tile_loadd(3, o + 16 * dp + dc + 16, o_stride);
    for (int64_t kc = 0; kc < nj; kc += 32) {
      const uint16_t* vc = vp + (kc / 2) * dp * 2 + dc * 2;
      _tile_loadd(4, p16 + kc, p_stride);
      _tile_loadd(5, p16 + 16 * kBlockKeys + kc, p_stride);
      _tile_loadd(6, vc, v_stride);
      _tile_loadd(7, vc + 32, v_stride);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, o + dc, o_stride);
    _tile_stored(1, o + dc + 16, o_stride);
    _tile_stored(2, o + 16 * dp + dc, o_stride);
    _tile_stored(3, o + 16 * dp + dc + 16, o_stride);
  }
}

void run_tile_amx(const Plan& pl, int64_t b, int64_t h, int64_t qt, Scratch& sc) {
  const AttentionParams& p = pl.p;
  const int64_t i0 = qt * pl.tile_rows;
  const int64_t rows = min_i64(pl.tile_rows, p.seqlen_q - i0);
  const int64_t rows_compute = (rows + 31) / 32 * 32;  // whole pairs of 16-row tiles
  const int64_t hk = h / pl.group;
  const int64_t dp = pl.dp;
  const int64_t n_blocks = begin_tile_bf16(pl, b, h, i0, rows, rows_compute, sc);
  const int64_t first_end = pl.visible_end(i0);
  const int64_t last_end = pl.visible_end(i0 + rows - 1);
  configure_tiles();
  // Steps are (key block, pair of 16-row tiles). Software pipeline: the scores of step t+1 are
  // issued before the softmax of step t, so the tile unit works on them while AVX-512 runs the
  // softmax (tile instructions are few micro-ops, so the out-of-order window holds both).
  // Scores alternate between two 32-row halves of sc.s.
  const int64_t n_pairs = rows_compute / 32;
  const int64_t n_steps = n_blocks * n_pairs;
  auto packed = [&](const void* base, int64_t kb) {
    return static_cast<const uint16_t*>(base) + pl.block_index(b, hk, kb) * pl.block_elems;
  };
  auto scores = [&](int64_t t) { return sc.s + (t & 1) * 32 * kBlockKeys; };
  if (n_steps > 0) qk_pair(sc.q16, dp, packed(pl.kpack, 0), scores(0));
  for (int64_t t = 0; t < n_steps; ++t) {
    if (t + 1 < n_steps) {
      const int64_t next_kb = (t + 1) / n_pairs, next_pair = (t + 1) % n_pairs;
      qk_pair(sc.q16 + next_pair * 32 * dp, dp, packed(pl.kpack, next_kb), scores(t + 1));
    }
    const int64_t kb = t / n_pairs, r = (t % n_pairs) * 32;
    const int64_t j0 = kb * kBlockKeys;
    // Padding rows (past the real ones) see every key; their results are never written out.
    const bool need_mask = j0 + kBlockKeys > first_end;
    if (softmax_block_bf16(pl, i0 + r, j0, 32, need_mask, scores(t), sc.p16 + r * kBlockKeys,
                           sc.m + r, sc.lv + 16 * r, sc.alpha + r))
      rescale_rows(32, dp, sc.o + r * dp, sc.alpha + r);
    // Keys past the last row's horizon have zero probability everywhere: skip 32-key halves.
    const int64_t nj = min_i64(kBlockKeys, last_end - j0);
    pv_pair(sc.p16 + r * kBlockKeys, nj, packed(pl.vpack, kb), dp, sc.o + r * dp);
  }
  _tile_release();
  finish_sums(rows, sc.lv, sc.l);
  end_tile<Avx512Vec>(pl, b, h, i0, rows, sc);
}

}  // namespace

const KernelOps kAmxOps = {32, 32, sizeof(uint16_t), &pack_block_bf16, &run_tile_amx};

}  // namespace pfa::kernels::cpu

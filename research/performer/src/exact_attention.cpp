#include <pfa/research/exact_attention.h>
#include <pfa/research/tensor_rows.h>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace pfa::research {

namespace {

constexpr int64_t kRows = 32;   // query rows that share one pass over the keys
constexpr int64_t kKeys = 128;  // keys scored at a time

}  // namespace

void exact_attention(const AttentionParams& p) {
  const int64_t D = p.head_dim, Lk = p.seqlen_k, Lq = p.seqlen_q;
  const int64_t group = p.heads_q / p.heads_kv;
  // Dense fp32 copies of every key and value head, so the inner loops read contiguous rows.
  std::vector<float> keys(static_cast<size_t>(p.batch * p.heads_kv * Lk * D));
  std::vector<float> values(keys.size());
  tbb::parallel_for(int64_t{0}, p.batch * p.heads_kv, [&](int64_t bh) {
    const int64_t b = bh / p.heads_kv, h = bh % p.heads_kv;
    load_head(p.k, p.dtype, p.k_stride, b, h, Lk, D, keys.data() + bh * Lk * D);
    load_head(p.v, p.dtype, p.v_stride, b, h, Lk, D, values.data() + bh * Lk * D);
  });
  const int64_t tiles = (Lq + kRows - 1) / kRows;
  tbb::parallel_for(int64_t{0}, p.batch * p.heads_q * tiles, [&](int64_t task) {
    const int64_t tile = task % tiles;
    const int64_t h = (task / tiles) % p.heads_q;
    const int64_t b = task / (tiles * p.heads_q);
    const int64_t bhk = b * p.heads_kv + h / group;
    const float* K = keys.data() + bhk * Lk * D;
    const float* V = values.data() + bhk * Lk * D;
    const int64_t i0 = tile * kRows, rows = std::min(kRows, Lq - i0);
    std::vector<float> q(static_cast<size_t>(rows * D)), o(static_cast<size_t>(rows * D), 0.f);
    std::vector<float> s(static_cast<size_t>(kKeys));
    float m[kRows], l[kRows];
    int64_t n[kRows];
    int64_t n_max = 0;
    for (int64_t r = 0; r < rows; ++r) {
      load_row(row_address(p.q, p.dtype, p.q_stride, b, i0 + r, h), p.dtype, D, &q[r * D]);
      for (int64_t d = 0; d < D; ++d) q[r * D + d] *= p.softmax_scale;
      m[r] = -std::numeric_limits<float>::infinity();
      l[r] = 0;
      n[r] = visible_keys(p, i0 + r);
      n_max = std::max(n_max, n[r]);
    }
    for (int64_t j0 = 0; j0 < n_max; j0 += kKeys) {
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t cnt = std::min(kKeys, n[r] - j0);
        if (cnt <= 0) continue;
        const float* qr = &q[r * D];
        float block_max = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < cnt; ++j) {
          const float* kj = K + (j0 + j) * D;
          float dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += qr[d] * kj[d];
          s[j] = dot;
          block_max = std::max(block_max, dot);
        }
        const float m_new = std::max(m[r], block_max);
        const float alpha = std::exp(m[r] - m_new);
        float* orow = &o[r * D];
        for (int64_t d = 0; d < D; ++d) orow[d] *= alpha;
        float sum = 0;
        for (int64_t j = 0; j < cnt; ++j) {
          const float w = std::exp(s[j] - m_new);
          sum += w;
          const float* vj = V + (j0 + j) * D;
          for (int64_t d = 0; d < D; ++d) orow[d] += w * vj[d];
        }
        l[r] = l[r] * alpha + sum;
        m[r] = m_new;
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      float* orow = &o[r * D];
      const float inv = l[r] > 0 ? 1.f / l[r] : 0.f;
      for (int64_t d = 0; d < D; ++d) orow[d] *= inv;
      store_out_row(p, b, i0 + r, h, orow);
      if (p.lse) {
        p.lse[(b * p.heads_q + h) * Lq + i0 + r] =
            l[r] > 0 ? m[r] + std::log(l[r]) : -std::numeric_limits<float>::infinity();
      }
    }
  });
}

}  // namespace pfa::research

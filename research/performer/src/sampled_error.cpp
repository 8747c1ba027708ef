#include <pfa/research/sampled_error.h>
#include <pfa/research/tensor_rows.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace pfa::research {

double exact_row(const AttentionParams& p, int64_t b, int64_t h, int64_t i, double* out) {
  const int64_t D = p.head_dim;
  const int64_t hk = h / (p.heads_q / p.heads_kv);
  const int64_t n = visible_keys(p, i);
  std::fill(out, out + D, 0.0);
  if (n == 0) return -std::numeric_limits<double>::infinity();
  std::vector<float> q(static_cast<size_t>(D)), row(static_cast<size_t>(D));
  load_row(row_address(p.q, p.dtype, p.q_stride, b, i, h), p.dtype, D, q.data());
  std::vector<double> score(static_cast<size_t>(n));
  double max_score = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < n; ++j) {
    load_row(row_address(p.k, p.dtype, p.k_stride, b, j, hk), p.dtype, D, row.data());
    double dot = 0;
    for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(q[d]) * row[d];
    score[j] = dot * p.softmax_scale;
    max_score = std::max(max_score, score[j]);
  }
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double w = std::exp(score[j] - max_score);
    sum += w;
    load_row(row_address(p.v, p.dtype, p.v_stride, b, j, hk), p.dtype, D, row.data());
    for (int64_t d = 0; d < D; ++d) out[d] += w * row[d];
  }
  for (int64_t d = 0; d < D; ++d) out[d] /= sum;
  return max_score + std::log(sum);
}

ErrorReport sampled_error(const AttentionParams& p, int64_t max_rows) {
  ErrorReport r;
  const int64_t D = p.head_dim;
  const int64_t total = p.batch * p.heads_q * p.seqlen_q;
  const int64_t rows = std::min(total, std::max<int64_t>(1, max_rows));
  std::vector<double> exact(static_cast<size_t>(D));
  std::vector<float> got(static_cast<size_t>(D)), x(static_cast<size_t>(D));
  double num = 0, den = 0, dot = 0, got_sq = 0, rq = 0, rk = 0;
  int64_t regime_rows = 0;
  const int64_t group = p.heads_q / p.heads_kv;
  for (int64_t t = 0; t < rows; ++t) {
    // Evenly spaced flat indices over [batch, head, position], offset to avoid always row 0.
    const int64_t flat = (t * total + total / (2 * rows)) / rows;
    const int64_t i = flat % p.seqlen_q;
    const int64_t h = (flat / p.seqlen_q) % p.heads_q;
    const int64_t b = flat / (p.seqlen_q * p.heads_q);
    const int64_t n = visible_keys(p, i);
    exact_row(p, b, h, i, exact.data());
    load_row(row_address(p.out, p.dtype, p.o_stride, b, i, h), p.dtype, D, got.data());
    for (int64_t d = 0; d < D; ++d) {
      const double e = static_cast<double>(got[d]) - exact[d];
      num += e * e;
      den += exact[d] * exact[d];
      dot += exact[d] * got[d];
      got_sq += static_cast<double>(got[d]) * got[d];
      r.max_abs_error = std::max(r.max_abs_error, std::fabs(e));
    }
    ++r.rows;
    if (n == 0) continue;
    load_row(row_address(p.q, p.dtype, p.q_stride, b, i, h), p.dtype, D, x.data());
    double qq = 0;
    for (int64_t d = 0; d < D; ++d) qq += static_cast<double>(x[d]) * x[d];
    load_row(row_address(p.k, p.dtype, p.k_stride, b, (i * 7919) % n, h / group), p.dtype, D,
             x.data());
    double kk = 0;
    for (int64_t d = 0; d < D; ++d) kk += static_cast<double>(x[d]) * x[d];
    rq += qq * p.softmax_scale;
    rk += kk * p.softmax_scale;
    ++regime_rows;
  }
  r.rel_error = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  r.cosine = den > 0 && got_sq > 0 ? dot / std::sqrt(den * got_sq) : (num == 0 ? 1.0 : 0.0);
  if (regime_rows > 0) {
    r.regime_q = rq / static_cast<double>(regime_rows);
    r.regime_k = rk / static_cast<double>(regime_rows);
  }
  return r;
}

}  // namespace pfa::research

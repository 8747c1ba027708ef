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

namespace {

// Rows to compare and how many rows each stands for. Under a causal mask the first rows see few
// keys, have large outputs and carry most of the error, so positions are stratified on a
// geometric grid from the first row that sees a key (1, 1, 2, 4, ... rows per stratum, capped so
// the later part is covered evenly); each stratum is represented by one row, weighted by its size.
struct Sample {
  int64_t b, h, i;
  double weight;
};

std::vector<Sample> choose_rows(const AttentionParams& p, int64_t max_rows) {
  std::vector<Sample> out;
  const int64_t first = p.causal ? std::max<int64_t>(0, p.seqlen_q - p.seqlen_k) : 0;
  const int64_t span = p.seqlen_q - first;
  if (span <= 0) return out;
  const int64_t budget = std::max<int64_t>(2, max_rows);
  const int64_t cap = std::max<int64_t>(1, (2 * span + budget - 1) / budget);
  int64_t step = p.causal ? 1 : cap;
  const int64_t heads = p.batch * p.heads_q;
  int64_t k = 0;
  for (int64_t start = first; start < p.seqlen_q; start += step, step = std::min(cap, 2 * step)) {
    const int64_t size = std::min(step, p.seqlen_q - start);
    const int64_t bh = (k++ * 7 + 3) % heads;  // walk over (batch, head) as well
    out.push_back({bh / p.heads_q, bh % p.heads_q, start + size / 2, static_cast<double>(size)});
  }
  return out;
}

}  // namespace

ErrorReport sampled_error(const AttentionParams& p, int64_t max_rows) {
  ErrorReport r;
  const int64_t D = p.head_dim;
  std::vector<double> exact(static_cast<size_t>(D));
  std::vector<float> got(static_cast<size_t>(D)), x(static_cast<size_t>(D));
  double num = 0, den = 0, dot = 0, got_sq = 0, rq = 0, rk = 0, weights = 0;
  const int64_t group = p.heads_q / p.heads_kv;
  for (const Sample& s : choose_rows(p, max_rows)) {
    const int64_t n = visible_keys(p, s.i);
    exact_row(p, s.b, s.h, s.i, exact.data());
    load_row(row_address(p.out, p.dtype, p.o_stride, s.b, s.i, s.h), p.dtype, D, got.data());
    double row_num = 0, row_den = 0, row_dot = 0, row_got = 0;
    for (int64_t d = 0; d < D; ++d) {
      const double e = static_cast<double>(got[d]) - exact[d];
      row_num += e * e;
      row_den += exact[d] * exact[d];
      row_dot += exact[d] * got[d];
      row_got += static_cast<double>(got[d]) * got[d];
      r.max_abs_error = std::max(r.max_abs_error, std::fabs(e));
    }
    num += s.weight * row_num;
    den += s.weight * row_den;
    dot += s.weight * row_dot;
    got_sq += s.weight * row_got;
    ++r.rows;
    load_row(row_address(p.q, p.dtype, p.q_stride, s.b, s.i, s.h), p.dtype, D, x.data());
    double qq = 0;
    for (int64_t d = 0; d < D; ++d) qq += static_cast<double>(x[d]) * x[d];
    load_row(row_address(p.k, p.dtype, p.k_stride, s.b, (s.i * 7919) % n, s.h / group), p.dtype,
             D, x.data());
    double kk = 0;
    for (int64_t d = 0; d < D; ++d) kk += static_cast<double>(x[d]) * x[d];
    rq += qq * p.softmax_scale;
    rk += kk * p.softmax_scale;
    weights += 1;
  }
  r.rel_error = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  r.cosine = den > 0 && got_sq > 0 ? dot / std::sqrt(den * got_sq) : (num == 0 ? 1.0 : 0.0);
  if (weights > 0) {
    r.regime_q = rq / weights;
    r.regime_k = rk / weights;
  }
  return r;
}

}  // namespace pfa::research

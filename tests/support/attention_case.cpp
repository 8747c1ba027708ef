#include "attention_case.h"

#include <pfa/sequence_sharding.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace pfa::test {

namespace {

// Reads element (b, s, h, d) of a tensor stored in `layout`.
double at(const HostTensor& t, pfa_layout layout, int64_t b, int64_t s, int64_t h, int64_t d) {
  return layout == PFA_LAYOUT_BHSD ? t.get(b, h, s, d) : t.get(b, s, h, d);
}

HostTensor make_tensor(pfa_dtype dtype, pfa_layout layout, int64_t b, int64_t s, int64_t h,
                       int64_t d, bool padded) {
  std::vector<int64_t> shape = layout == PFA_LAYOUT_BHSD ? std::vector<int64_t>{b, h, s, d}
                                                         : std::vector<int64_t>{b, s, h, d};
  if (!padded) return HostTensor(dtype, shape);
  // Rows of head_dim + 8 and one spare row per sequence: strided, still unit stride in head_dim.
  std::vector<int64_t> storage = shape;
  storage[3] += 8;
  storage[2] += 1;
  std::vector<int64_t> strides(4, 1);
  for (int i = 3; i-- > 0;) strides[i] = strides[i + 1] * storage[i + 1];
  return HostTensor(dtype, shape, strides);
}

}  // namespace

AttentionOptions AttentionCase::options() {
  AttentionOptions o;
  o.causal = problem.causal != 0;
  o.softmax_scale = problem.softmax_scale;
  o.layout = layout;
  o.lse = problem.want_lse ? &lse.dl() : nullptr;
  return o;
}

AttentionCase make_case(const Problem& problem, pfa_layout layout, std::mt19937_64& rng,
                        bool padded) {
  AttentionCase c;
  c.problem = problem;
  c.layout = layout;
  const auto dtype = static_cast<pfa_dtype>(problem.dtype);
  const Problem& p = problem;
  c.q = make_tensor(dtype, layout, p.batch, p.seqlen_q, p.heads_q, p.head_dim, padded);
  c.k = make_tensor(dtype, layout, p.batch, p.seqlen_k, p.heads_kv, p.head_dim, padded);
  c.v = make_tensor(dtype, layout, p.batch, p.seqlen_k, p.heads_kv, p.head_dim, padded);
  c.out = make_tensor(dtype, layout, p.batch, p.seqlen_q, p.heads_q, p.head_dim, padded);
  c.lse = HostTensor(PFA_DTYPE_FP32, {p.batch, p.heads_q, p.seqlen_q});
  c.q.fill_random(rng);
  c.k.fill_random(rng);
  c.v.fill_random(rng);
  c.out.poison();
  c.lse.poison();
  return c;
}

namespace {

// The tensor's values as dense doubles in [batch, seq, heads, dim] order.
std::vector<double> dense_bshd(const HostTensor& t, pfa_layout layout, int64_t batch,
                               int64_t seq, int64_t heads, int64_t dim) {
  std::vector<double> out(static_cast<size_t>(batch * seq * heads * dim));
  size_t i = 0;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t d = 0; d < dim; ++d) out[i++] = at(t, layout, b, s, h, d);
  return out;
}

}  // namespace

Reference reference_attention(const AttentionCase& c) {
  const Problem& p = c.problem;
  const int64_t D = p.head_dim;
  const auto q = dense_bshd(c.q, c.layout, p.batch, p.seqlen_q, p.heads_q, D);
  const auto k = dense_bshd(c.k, c.layout, p.batch, p.seqlen_k, p.heads_kv, D);
  const auto v = dense_bshd(c.v, c.layout, p.batch, p.seqlen_k, p.heads_kv, D);
  Reference ref;
  ref.out.assign(static_cast<size_t>(p.batch * p.seqlen_q * p.heads_q * D), 0.0);
  ref.lse.assign(static_cast<size_t>(p.batch * p.heads_q * p.seqlen_q),
                 -std::numeric_limits<double>::infinity());
  const int64_t group = p.heads_q / p.heads_kv;
  std::vector<double> scores(static_cast<size_t>(p.seqlen_k));
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t h = 0; h < p.heads_q; ++h) {
      const int64_t hk = h / group;
      for (int64_t i = 0; i < p.seqlen_q; ++i) {
        int64_t visible = p.seqlen_k;
        if (p.causal) {
          visible = std::clamp<int64_t>(i + p.seqlen_k - p.seqlen_q + 1, 0, p.seqlen_k);
        }
        if (visible == 0) continue;  // zeros and -inf already
        const double* q_row = &q[static_cast<size_t>(((b * p.seqlen_q + i) * p.heads_q + h) * D)];
        double max_score = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < visible; ++j) {
          const double* k_row = &k[static_cast<size_t>(((b * p.seqlen_k + j) * p.heads_kv + hk) * D)];
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += q_row[d] * k_row[d];
          scores[j] = dot * static_cast<double>(p.softmax_scale);
          max_score = std::max(max_score, scores[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < visible; ++j) {
          scores[j] = std::exp(scores[j] - max_score);
          sum += scores[j];
        }
        double* o = &ref.out[static_cast<size_t>(((b * p.seqlen_q + i) * p.heads_q + h) * D)];
        for (int64_t j = 0; j < visible; ++j) {
          const double w = scores[j] / sum;
          const double* v_row = &v[static_cast<size_t>(((b * p.seqlen_k + j) * p.heads_kv + hk) * D)];
          for (int64_t d = 0; d < D; ++d) o[d] += w * v_row[d];
        }
        ref.lse[static_cast<size_t>((b * p.heads_q + h) * p.seqlen_q + i)] = max_score + std::log(sum);
      }
    }
  }
  return ref;
}

double relative_error(const AttentionCase& c, const Reference& ref) {
  const Problem& p = c.problem;
  double num = 0, den = 0;
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t s = 0; s < p.seqlen_q; ++s)
      for (int64_t h = 0; h < p.heads_q; ++h)
        for (int64_t d = 0; d < p.head_dim; ++d) {
          const double r = ref.out[static_cast<size_t>(((b * p.seqlen_q + s) * p.heads_q + h) * p.head_dim + d)];
          const double x = at(c.out, c.layout, b, s, h, d);
          if (!std::isfinite(x)) return std::numeric_limits<double>::infinity();
          num += (x - r) * (x - r);
          den += r * r;
        }
  if (den == 0) return std::sqrt(num);  // every row fully masked: the output must be zeros
  return std::sqrt(num / den);
}

double lse_max_error(const AttentionCase& c, const Reference& ref) {
  const Problem& p = c.problem;
  double worst = 0;
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t h = 0; h < p.heads_q; ++h)
      for (int64_t s = 0; s < p.seqlen_q; ++s) {
        const double r = ref.lse[static_cast<size_t>((b * p.heads_q + h) * p.seqlen_q + s)];
        const double x = c.lse.get(b, h, s);
        if (std::isinf(r)) {
          if (!(std::isinf(x) && x < 0)) return std::numeric_limits<double>::infinity();
          continue;
        }
        if (!std::isfinite(x)) return std::numeric_limits<double>::infinity();
        worst = std::max(worst, std::abs(x - r));
      }
  return worst;
}

double tolerance(pfa_dtype dtype) {
  switch (dtype) {
    case PFA_DTYPE_FP32: return 1e-4;
    case PFA_DTYPE_FP16: return 4e-3;
    case PFA_DTYPE_BF16: return 2e-2;
  }
  return 0;
}

HostTensor mirrored_shard(const HostTensor& whole, int ranks, int rank) {
  const auto& sh = whole.shape();
  const int64_t shard = sh[1] / ranks;
  HostTensor out(whole.dtype(), {sh[0], shard, sh[2], sh[3]});
  for (int64_t b = 0; b < sh[0]; ++b)
    for (int64_t i = 0; i < shard; ++i)
      for (int64_t h = 0; h < sh[2]; ++h)
        for (int64_t d = 0; d < sh[3]; ++d) {
          const int64_t from[4] = {b, sharding::global_row(ranks, rank, shard, i), h, d};
          const int64_t to[4] = {b, i, h, d};
          out.set(to, whole.get(from));
        }
  return out;
}

uint64_t fresh_seed() {
  if (const char* env = std::getenv("PFA_TEST_SEED"); env != nullptr) {
    return std::strtoull(env, nullptr, 10);
  }
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

std::string describe(const AttentionCase& c) {
  const bool contiguous = c.q.strides()[2] == c.q.shape()[3];
  return to_string(c.problem) + (contiguous ? "" : " (padded strides)") + " in " +
         layout_name(c.layout);
}

}  // namespace pfa::test

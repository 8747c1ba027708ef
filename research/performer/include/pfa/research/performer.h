// FAVOR+ attention (Performer, Choromanski et al., ICLR 2021): softmax attention approximated with
// positive orthogonal random features, so its cost is linear in the sequence length.
//
//   exp(q.k) = E[phi(q) . phi(k)],  phi(x)_r = m^-1/2 exp(w_r.x - |x|^2 / 2),  w_r ~ N(0, I_d)
//
// with the w_r drawn in orthogonal blocks (each block's rows orthogonalised, then given the norms of
// independent Gaussian vectors), which keeps the estimate unbiased and lowers its variance. q and k
// are scaled by sqrt(softmax_scale) first. The output is (phi(q) . S) / (phi(q) . z) with
// S = sum_j phi(k_j) v_j^T and z = sum_j phi(k_j): O(L m d) instead of O(L^2 d). Causal attention
// keeps S and z as prefix sums over the keys.
//
// The estimate is unbiased, but its variance grows like exp(|q + k|^2): the approximation is good
// for small softmax_scale * |q|^2 (below about 2) and poor above about 4, where no affordable
// feature count helps. expected_error() is the error model the plugin uses as its prior.
#pragma once

#include <pfa/kernels/attention_params.h>

#include <cstdint>
#include <vector>

namespace pfa::research {

struct PerformerConfig {
  int64_t features = 256;       // m random features per key/value head
  uint64_t seed = 0x5eed2021;   // draws are a function of (seed, kv head) only
  bool orthogonal = true;       // false: plain i.i.d. Gaussian features (for comparisons)
};

// Computes attention into params.out (and params.lse, when set) with FAVOR+. GQA, causal
// (bottom-right), fp32/fp16/bf16 inputs; computes in fp32. Rows that see no key get zeros and an
// LSE of -inf. Throws std::invalid_argument for inconsistent params.
void performer_attention(const kernels::AttentionParams& params, const PerformerConfig& config);

// The random projection for one key/value head: features x dim, row-major.
std::vector<float> performer_projection(int64_t features, int64_t dim, uint64_t seed,
                                        bool orthogonal);

// The attention weights FAVOR+ implies for query row i of head h in batch b over the keys it sees
// (weights[0 .. visible)), for measuring attention-matrix error. O(visible * features * dim).
void performer_attention_weights(const kernels::AttentionParams& params,
                                 const PerformerConfig& config, int64_t b, int64_t h, int64_t i,
                                 double* weights);

// Expected relative output error for inputs whose softmax_scale * |q|^2 and |k|^2 are about
// `regime`, with `features` features and `keys` keys seen per query. An empirical fit (see
// bench/results) on random inputs, rounded up; it grows like sqrt(exp(2 regime) / m).
double performer_expected_error(double regime, int64_t features, int64_t keys);

}  // namespace pfa::research

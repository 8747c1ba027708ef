// Quantum self-attention in the manner of QSANN (Li et al., 2022), simulated exactly on a
// state-vector simulator, as a research baseline.
//
// Each query and each key is encoded into an n-qubit parameterised circuit: its features, scaled
// by sqrt(softmax_scale), become RY angles, n at a time, each layer followed by a ring of CNOTs;
// then `depth` layers of parameterised RY/RZ rotations and a CNOT ring. The measured expectation
// <Z> of qubit 0 gives one number per token, z_q for queries (one circuit) and z_k for keys
// (another). The attention weights are the Gaussian-projected ones of QSANN,
//
//     w_ij = exp(-(z_q,i - z_k,j)^2),   o_i = sum_j w_ij v_j / sum_j w_ij,
//
// and the value aggregation is classical. The circuit parameters are fixed seeded draws, not
// trained: this measures the mechanism, not a trained model. It is not softmax attention and does
// not converge to it; its distance from softmax attention is reported, not hidden.
//
// Cost: per token about (2 ceil(d / n) + 3 depth) n gates, each over 2^n amplitudes, so
// O((Lq + Lk) d 2^n); then O(Lq Lk d) for the aggregation. Memory 2^n amplitudes per thread.
#pragma once

#include <pfa/kernels/attention_params.h>

#include <cstdint>
#include <vector>

namespace pfa::research {

struct QsannConfig {
  int qubits = 6;              // n; the plugin allows up to 12
  int depth = 2;               // parameterised layers after the encoding
  int64_t shots = 0;           // 0: exact expectations; else estimated from this many shots
  uint64_t seed = 0x05a11ed;   // circuit parameters (per head) and shot noise
};

// QSANN attention into params.out. GQA, causal (bottom-right). No LSE: the weights are not
// exp(q.k), so a log-sum-exp would not be comparable (throws std::invalid_argument if params.lse
// is set, or for inconsistent params).
void qsann_attention(const kernels::AttentionParams& params, const QsannConfig& config);

// <Z_0> after encoding `x` (dim values, already scaled) with the circuit of (seed, head, role);
// role 0 for queries, 1 for keys. Exposed for tests.
double qsann_expectation(const float* x, int64_t dim, const QsannConfig& config, int64_t head,
                         int role);

// The normalised QSANN weights of query row i of head h in batch b over the keys it sees
// (weights[0 .. visible)), for measuring attention-matrix error. Exact expectations.
void qsann_attention_weights(const kernels::AttentionParams& params, const QsannConfig& config,
                             int64_t b, int64_t h, int64_t i, double* weights);

// Relative error against softmax attention measured on random inputs, rounded up.
double qsann_expected_error();

}  // namespace pfa::research

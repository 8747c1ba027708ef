// How far a research backend's output is from exact softmax attention, measured on the call's own
// data: a stratified sample of query rows is recomputed exactly in fp64 and compared with what the
// backend wrote. This is what a backend reports as its per-call error estimate.
#pragma once

#include <pfa/kernels/attention_params.h>

#include <cstdint>

namespace pfa::research {

struct ErrorReport {
  double rel_error = 0;      // ||o_hat - o|| / ||o|| over the sampled rows
  double max_abs_error = 0;  // largest |o_hat - o| element
  double cosine = 1;         // cosine similarity of the sampled outputs, flattened
  double regime_q = 0;       // mean softmax_scale * ||q||^2 (= ||q||^2 / sqrt(d) at the default)
  double regime_k = 0;       // the same for the keys the sampled rows saw
  int64_t rows = 0;          // rows compared
};

// Compares params.out with exact attention on about `max_rows` query rows (a few more under a
// causal mask, whose early rows are sampled densely and weighted by the rows they stand for),
// spread over batch and heads. Rows that see no key are not sampled. Cost: rows * seqlen_k * d.
ErrorReport sampled_error(const kernels::AttentionParams& params, int64_t max_rows);

// Exact attention (fp64 accumulation) for one query row: out[head_dim]; returns the LSE
// (-inf when the row sees no key).
double exact_row(const kernels::AttentionParams& params, int64_t b, int64_t h, int64_t i,
                 double* out);

}  // namespace pfa::research

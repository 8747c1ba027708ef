// One attention test case: random q, k, v in a chosen layout, a poisoned output, and the fp64
// reference it must match.
#pragma once

#include "host_tensor.h"

#include <pfa/options.h>
#include <pfa/problem.h>

#include <random>
#include <string>
#include <vector>

namespace pfa::test {

struct AttentionCase {
  Problem problem{};
  pfa_layout layout = PFA_LAYOUT_BSHD;
  HostTensor q, k, v, out, lse;

  // Options that describe this case to the engine (layout, causal, scale, lse).
  AttentionOptions options();
};

// Random inputs in [-1, 1) (values chosen afresh each call), output and LSE poisoned. `padded`
// leaves gaps between rows so the tensors are strided rather than contiguous.
AttentionCase make_case(const Problem& problem, pfa_layout layout, std::mt19937_64& rng,
                        bool padded = false);

struct Reference {
  std::vector<double> out;  // [batch, seqlen_q, heads_q, head_dim]
  std::vector<double> lse;  // [batch, heads_q, seqlen_q]; -inf where a row sees no key
};

// Exact attention in fp64 on the (already rounded) input values.
Reference reference_attention(const AttentionCase& c);

// ||out - ref|| / ||ref|| over every element, reading out in the case's layout.
double relative_error(const AttentionCase& c, const Reference& ref);
// Largest |lse - ref| over rows that see at least one key; rows that see none must be -inf.
double lse_max_error(const AttentionCase& c, const Reference& ref);

// Relative error an exact backend must stay under, by dtype (output rounding dominates).
double tolerance(pfa_dtype dtype);

// Rank `rank`'s shard of a whole-sequence tensor [batch, L, heads, dim] split over `ranks` in the
// mirrored-chunk layout (pfa/sequence_sharding.h), contiguous BSHD.
HostTensor mirrored_shard(const HostTensor& whole, int ranks, int rank);

// A seed from std::random_device, printed so that a failure can be replayed (PFA_TEST_SEED=...).
uint64_t fresh_seed();

std::string describe(const AttentionCase& c);

}  // namespace pfa::test

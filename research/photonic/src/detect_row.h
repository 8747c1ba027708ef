// The hot loop of the simulation: a few A-side operand vectors (query rows, or probability rows)
// detected against many B-side vectors (keys, or value columns) at once, laid out so the loop
// over B vectors is contiguous and vectorises. Same physics as SignalChain::detect, element for
// element (same noise counters), only faster.
#pragma once

#include "pfa/photonic/signal_chain.h"

#include <cstdint>

namespace pfa::photonic::detail {

// B-side operands transposed for the row kernel: optical[c][k][n] and scales[c][n], n < ld.
struct TransposedB {
  int64_t n = 0, ld = 0, chunks = 0;
  int lambda = 0;
  std::vector<float> optical;
  std::vector<float> scales;
};

// Node constants of one A lane, expanded over B vectors n (node h = n % H).
struct LaneNodes {
  std::vector<float> gain;        // node gain / lambda
  std::vector<float> offset;      // analog offset
  std::vector<float> out_offset;  // digital correction
  std::vector<float> out_gain;
};

// Up to kMaxRows A-side rows that share one lane (rows i, i + W, i + 2W, ...), detected together so
// each B vector is loaded once for all of them.
inline constexpr int kMaxRows = 4;

struct RowBlock {
  int rows = 0;
  const float* a[kMaxRows] = {};         // operand of row t: chunks x lambda optical values
  const float* a_scales[kMaxRows] = {};  // its block scales
  uint64_t noise_key[kMaxRows] = {};
  float* acc[kMaxRows] = {};             // accumulators, indexed by absolute n
};

struct DetectRange {
  int64_t chunk_begin = 0, chunk_end = 0;  // chunks of the reduction to detect
  int64_t n_begin = 0, n_end = 0;          // B vectors
  bool zero_acc = true;                    // start acc at zero (else add to it)
};

struct RowNoise {
  float sigma = 0;
  uint32_t counter_stride = 0;  // noise counter = n * stride + chunk
};

// acc_t[n] (+)= sum over the chunk range of detect(a_t chunk c, b_{n,c}) * a_scales_t[c] *
// b.scales[c][n], for n in the range and every row t of the block. `work` holds
// kMaxRows * 512 floats.
void detect_rows(const RowBlock& rows, const TransposedB& b, const DetectRange& range,
                 const LaneNodes& nodes, const RowNoise& noise, const AdcRange& adc, float* work,
                 int64_t& clipped);

}  // namespace pfa::photonic::detail

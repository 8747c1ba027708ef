// The hot loop of the simulation: one A-side operand vector (a query row, or a probability row)
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

struct RowNoise {
  float sigma = 0;
  uint64_t key = 0;
  uint32_t counter_stride = 0;  // counter = n * stride + chunk
};

// acc[n] = sum over chunks c < `chunks` of detect(a_c, b_{n,c}) * a_scales[c] * b.scales[c][n],
// for n < n_end. `work` holds at least min(n_end, 512) floats.
void detect_row(const float* a, const float* a_scales, int64_t chunks, const TransposedB& b,
                int64_t n_end, const LaneNodes& nodes, const RowNoise& noise,
                const AdcRange& adc, float* acc, float* work, int64_t& clipped);

}  // namespace pfa::photonic::detail

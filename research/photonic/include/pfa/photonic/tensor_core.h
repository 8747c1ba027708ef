// Matrix products on the simulated crossbar tensor core: C = A . B^T, both operands modulated
// every cycle (as Q . K^T and P . V need), tiled to the core (W x H lanes, lambda terms per
// detection), partial sums accumulated electronically in fp32.
#pragma once

#include "signal_chain.h"

#include <cstdint>
#include <vector>

namespace pfa::photonic {

// Operand rows encoded for one side of the crossbar: [rows][chunks * lambda] optical values and
// [rows][chunks] block scales. Row r runs on lane r % W (side A) or r % H (side B).
struct EncodedRows {
  int64_t rows = 0, chunks = 0;
  int lambda = 0;
  std::vector<float> optical;
  std::vector<float> scales;
  const float* row(int64_t r) const { return optical.data() + r * chunks * lambda; }
  const float* scale(int64_t r) const { return scales.data() + r * chunks; }
};

// Encodes `rows` rows of `n` values: element (r, i) at data[r * row_stride + i * elem_stride].
EncodedRows encode_rows(const SignalChain& chain, const float* data, int64_t rows, int64_t n,
                        int64_t row_stride, int64_t elem_stride, Side side, bool nonnegative);

// Sets the ADC full scale for a product from a pilot sample of its detections (an automatic gain
// control): max(sigmas x RMS, largest sampled value), capped at the physical range; the physical
// range when sigmas <= 0.
AdcRange pilot_adc_range(const SignalChain& chain, const EncodedRows& a, const EncodedRows& b,
                         double sigmas);

struct ProductStats {
  int64_t detections = 0;
  int64_t clipped = 0;
};

// C[M x N] (row-major) = A . B^T through the chain. `stream` seeds this product's noise.
std::vector<float> photonic_matmul(const SignalChain& chain, const EncodedRows& a,
                                   const EncodedRows& b, const AdcRange& adc, uint64_t stream,
                                   ProductStats* stats = nullptr);

}  // namespace pfa::photonic

// Attention computed through the simulated device: Q . K^T and P . V on the photonic crossbar,
// scaling, softmax and normalisation electronic in fp32. Takes the kernels' raw-pointer
// arguments (any of fp32/fp16/bf16, element strides, GQA, bottom-right causal masking; a row that
// sees no key gets zeros and LSE -inf).
#pragma once

#include "cost_model.h"
#include "device.h"

#include <pfa/kernels/attention_params.h>

#include <cstdint>

namespace pfa::photonic {

struct PhotonicRunStats {
  int64_t detections = 0;   // ADC conversions simulated
  int64_t clipped = 0;      // of which clipped at the ADC full scale
  float qk_full_scale = 0;  // ADC full scale chosen for each product (full-scale units)
  float pv_full_scale = 0;
};

// Writes p.out (and p.lse). `call_id` selects this call's noise: same device seeds, same call id,
// same inputs -> same output. Runs TBB-parallel over rows.
PhotonicRunStats photonic_attention(const SimulatedDevice& device,
                                    const kernels::AttentionParams& p, uint64_t call_id);

// Exact attention (fp64) on up to `max_rows` query rows spread over the call, against what p.out
// holds: ||out - exact|| / ||exact|| over those rows. Rows that see no key are skipped.
struct SampledError {
  double rel_error = 0;
  int rows = 0;
};
SampledError sampled_error(const kernels::AttentionParams& p, int max_rows);

// Plain fp32 scalar attention (one row at a time): the baseline the simulator's speed is
// measured against, and a reference for tests.
void exact_attention(const kernels::AttentionParams& p);

AttentionShape shape_of(const kernels::AttentionParams& p);

}  // namespace pfa::photonic

// Shared helpers of the photonic tests: a device with chosen impairments, and kernel arguments
// viewing a test case's host tensors.
#pragma once

#include "attention_case.h"

#include <pfa/photonic/attention.h>
#include <pfa/photonic/calibration.h>
#include <pfa/photonic/device.h>

#include <random>

namespace pfa::photonic::test_util {

inline SimConfig ideal_config() {
  SimConfig c;
  c.noise = false;
  c.variation = false;
  c.crosstalk = false;
  c.dac_bits = c.adc_bits = 24;
  c.adc_range_sigmas = 0;
  return c;
}

inline SimulatedDevice device(const SimConfig& config, const char* profile = "generic") {
  return SimulatedDevice(load_profile(profile), config);
}

// Kernel arguments over a BSHD or padded test case (strides come from the host tensors).
inline kernels::AttentionParams params_of(pfa::test::AttentionCase& c) {
  kernels::AttentionParams p;
  const auto& pr = c.problem;
  p.q = c.q.data();
  p.k = c.k.data();
  p.v = c.v.data();
  p.out = c.out.data();
  p.lse = pr.want_lse ? static_cast<float*>(c.lse.data()) : nullptr;
  p.batch = pr.batch;
  p.heads_q = pr.heads_q;
  p.heads_kv = pr.heads_kv;
  p.seqlen_q = pr.seqlen_q;
  p.seqlen_k = pr.seqlen_k;
  p.head_dim = pr.head_dim;
  for (int i = 0; i < 3; ++i) {
    p.q_stride[i] = c.q.strides()[i];
    p.k_stride[i] = c.k.strides()[i];
    p.v_stride[i] = c.v.strides()[i];
    p.o_stride[i] = c.out.strides()[i];
  }
  p.dtype = static_cast<kernels::DType>(pr.dtype);
  p.causal = pr.causal != 0;
  p.softmax_scale = pr.softmax_scale;
  return p;
}

inline pfa::test::AttentionCase random_case(uint64_t seed, int64_t seq = 96, int64_t dim = 64,
                                            bool causal = false, pfa_dtype dtype = PFA_DTYPE_FP32,
                                            int64_t heads_q = 2, int64_t heads_kv = 2) {
  std::mt19937_64 rng(seed);
  Problem problem = make_problem(1, heads_q, heads_kv, seq, seq, dim, dtype, causal);
  problem.want_lse = 1;
  return pfa::test::make_case(problem, PFA_LAYOUT_BSHD, rng);
}

// Relative error of attention through `device` on case `c` against the fp64 reference.
inline double run_error(const SimulatedDevice& device, pfa::test::AttentionCase& c,
                        uint64_t call_id = 1) {
  photonic_attention(device, params_of(c), call_id);
  return pfa::test::relative_error(c, pfa::test::reference_attention(c));
}

}  // namespace pfa::photonic::test_util

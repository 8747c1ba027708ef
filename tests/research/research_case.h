// Shared pieces of the research tests: AttentionParams over a test case's host tensors, and a
// case whose q and k are rescaled to a chosen input regime.
#pragma once

#include "attention_case.h"

#include <pfa/kernels/attention_params.h>

#include <cmath>

namespace pfa::test {

// The kernel view of a case's tensors (BSHD or BHSD storage, any padding).
inline kernels::AttentionParams params_of(AttentionCase& c, bool with_lse) {
  kernels::AttentionParams p;
  const Problem& pr = c.problem;
  p.q = c.q.data();
  p.k = c.k.data();
  p.v = c.v.data();
  p.out = c.out.data();
  p.lse = with_lse ? static_cast<float*>(c.lse.data()) : nullptr;
  p.batch = pr.batch;
  p.heads_q = pr.heads_q;
  p.heads_kv = pr.heads_kv;
  p.seqlen_q = pr.seqlen_q;
  p.seqlen_k = pr.seqlen_k;
  p.head_dim = pr.head_dim;
  HostTensor* t[4] = {&c.q, &c.k, &c.v, &c.out};
  int64_t* s[4] = {p.q_stride, p.k_stride, p.v_stride, p.o_stride};
  for (int i = 0; i < 4; ++i) {
    const auto& st = t[i]->strides();
    s[i][0] = st[0];
    s[i][1] = c.layout == PFA_LAYOUT_BHSD ? st[2] : st[1];
    s[i][2] = c.layout == PFA_LAYOUT_BHSD ? st[1] : st[2];
  }
  p.dtype = static_cast<kernels::DType>(pr.dtype);
  p.causal = pr.causal != 0;
  p.softmax_scale = pr.softmax_scale;
  return p;
}

// Uniform [-1, 1) inputs have |x|^2 ~ d / 3; choosing the scale sets softmax_scale * |q|^2.
inline void set_regime(Problem& p, double regime) {
  p.softmax_scale = static_cast<float>(regime / (static_cast<double>(p.head_dim) / 3.0));
}

}  // namespace pfa::test

// An operator's override: one problem shape always routed to one backend (while it is eligible).
// Kept in the store's pins table; `pfa-tune pin` / `unpin` edit it, LearnedRouter obeys it.
#pragma once

#include <pfa/problem.h>

#include <cstdint>
#include <string>

namespace pfa::store {

// A pin matches a problem on batch, heads_q, heads_kv, seqlen_q, seqlen_k, head_dim, dtype,
// causal and device type; layout, want_lse, the softmax scale and the device id do not matter.
struct Pin {
  Problem problem{};
  std::string backend;
  int64_t created_us = 0;  // 0: Store::pin stamps the current time
};

inline bool pin_matches(const Problem& pin, const Problem& p) noexcept {
  return pin.batch == p.batch && pin.heads_q == p.heads_q && pin.heads_kv == p.heads_kv &&
         pin.seqlen_q == p.seqlen_q && pin.seqlen_k == p.seqlen_k && pin.head_dim == p.head_dim &&
         pin.dtype == p.dtype && (pin.causal != 0) == (p.causal != 0) &&
         pin.device_type == p.device_type;
}

}  // namespace pfa::store

// What a caller can ask of one attention call.
#pragma once

#include <pfa/plugin_abi.h>

#include <limits>
#include <string>

namespace pfa {

// What the router minimises.
enum class Objective { latency = 0, energy = 1, energy_delay = 2 };

const char* objective_name(Objective objective) noexcept;
Objective parse_objective(const std::string& text);  // throws pfa::Error

struct AttentionOptions {
  bool causal = false;
  // Scores are scale * q.k; 0 means 1/sqrt(head_dim).
  float softmax_scale = 0.0f;
  // How q, k, v and out are indexed: [batch, seq, heads, dim] or [batch, heads, seq, dim].
  // Either may have any strides with a unit head_dim stride.
  pfa_layout layout = PFA_LAYOUT_BSHD;
  // Optional float32 [batch, heads_q, seqlen_q] contiguous tensor for the log-sum-exp.
  DLTensor* lse = nullptr;
  // Run exactly this backend (by name) instead of routing; an error if it cannot serve the call.
  std::string backend;
  // cudaStream_t for CUDA tensors; null is the default stream.
  void* stream = nullptr;
  Objective objective = Objective::latency;
  // Largest acceptable relative output error; approximate backends that can't meet it are out.
  // 0 admits exact backends only.
  double max_rel_error = 0.0;
  // Let simulated backends compete (what-if routing). Production routing leaves this off.
  bool what_if = false;
  // Sequence parallelism: q, k, v and out hold this rank's shard of a sequence split over `ranks`
  // devices (pfa/sequence_sharding.h says which rows), and `communicator` is the group's
  // ncclComm_t. Every rank of the group makes the same call at the same time. Only backends that
  // serve split problems are candidates, and there is no fallback between backends (all ranks must
  // run the same one).
  int ranks = 1;
  void* communicator = nullptr;
};

}  // namespace pfa

// How a sequence split over several devices is laid out, and the order in which a ring of ranks
// visits it (sequence parallelism: queries stay where they are, key/value shards travel).
//
// Layout. The whole sequence of L rows is cut into 2 * ranks chunks of c = L / (2 * ranks) rows;
// rank r holds chunk r followed by chunk 2 * ranks - 1 - r, so its shard has 2c rows. With causal
// masking every rank then sees exactly the same number of query/key pairs (an early chunk, with
// few visible keys, is paired with its mirror near the end, with many), which is what keeps the
// ring balanced. Non-causal attention does not care where rows live: any split works for it, and
// this one does too.
//
// The ring. In step s (0 <= s < ranks) rank r holds the key/value shard of rank (r - s) mod ranks
// and folds one partial result into its output. Step 0 is the local shard (causal within it when
// the problem is causal). In a causal ring a later step needs only half of the work: a visiting
// shard from an earlier rank is seen in full by all local queries but only through its first chunk;
// a shard from a later rank is seen, in full, by the local second chunk only.
//
// Header-only and free of CUDA, so applications can shard their tensors and tests can check the
// plan on any machine.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace pfa::sharding {

// Rows of the whole sequence in each of the 2 * ranks chunks.
constexpr int64_t chunk_rows(int64_t sequence_rows, int ranks) noexcept {
  return sequence_rows / (2 * int64_t{ranks});
}

// True when a sequence of this length can be split over `ranks` in the mirrored layout.
constexpr bool can_split(int64_t sequence_rows, int ranks) noexcept {
  return ranks >= 1 && sequence_rows > 0 && sequence_rows % (2 * int64_t{ranks}) == 0;
}

// The row of the whole sequence that local row `local_row` of rank `rank`'s shard holds.
constexpr int64_t global_row(int ranks, int rank, int64_t shard_rows, int64_t local_row) noexcept {
  const int64_t c = shard_rows / 2;
  const int64_t chunk = local_row < c ? rank : 2 * int64_t{ranks} - 1 - rank;
  return chunk * c + (local_row < c ? local_row : local_row - c);
}

// One step of the ring on one rank: which visiting shard, and which rows of the local queries and
// of the visiting keys/values take part. Rows outside [begin, begin + rows) are not touched.
struct RingStep {
  int source = 0;         // the rank whose key/value shard is here in this step
  int64_t q_begin = 0;    // first local query row
  int64_t q_rows = 0;
  int64_t kv_begin = 0;   // first row of the visiting key/value shard
  int64_t kv_rows = 0;
  bool causal = false;    // masked within the block (the local step of a causal ring)
};

// Step `step` of rank `rank` in a ring of `ranks`, for shards of shard_q query rows and shard_k
// key rows (equal and even when causal).
constexpr RingStep ring_step(int ranks, int rank, int step, int64_t shard_q, int64_t shard_k,
                             bool causal) noexcept {
  RingStep s;
  s.source = static_cast<int>(((int64_t{rank} - step) % ranks + ranks) % ranks);
  s.q_rows = shard_q;
  s.kv_rows = shard_k;
  if (!causal) return s;
  if (s.source == rank) {
    s.causal = true;  // both local chunks keep their order, so the mask is the ordinary one
  } else if (s.source < rank) {
    s.kv_rows = shard_k / 2;  // only the visitor's early chunk lies before any local query
  } else {
    s.q_begin = shard_q / 2;  // only the local late chunk lies after the visitor's rows
    s.q_rows = shard_q - shard_q / 2;
  }
  return s;
}

// Folds a partial attention result for one query row (its normalised output `part` and the
// log-sum-exp of its scores) into an accumulated one. Both are softmax-weighted averages over
// disjoint sets of keys; the merged row weights each by its share of the total exp-sum. A part that
// saw no key (lse = -inf) changes nothing; an accumulator that saw none takes the part as it is.
template <class Acc, class Part>
inline void merge_row(Acc* acc, Acc& acc_lse, const Part* part, Acc part_lse,
                      int64_t head_dim) noexcept {
  constexpr Acc kNegInf = -std::numeric_limits<Acc>::infinity();
  if (part_lse == kNegInf) return;
  if (acc_lse == kNegInf) {
    for (int64_t d = 0; d < head_dim; ++d) acc[d] = static_cast<Acc>(part[d]);
    acc_lse = part_lse;
    return;
  }
  const Acc m = std::max(acc_lse, part_lse);
  const Acc wa = std::exp(acc_lse - m), wp = std::exp(part_lse - m);
  const Acc inv = Acc(1) / (wa + wp);
  for (int64_t d = 0; d < head_dim; ++d) {
    acc[d] = (wa * acc[d] + wp * static_cast<Acc>(part[d])) * inv;
  }
  acc_lse = m + std::log(wa + wp);
}

}  // namespace pfa::sharding

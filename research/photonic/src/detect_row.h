// The hot loop of the simulation: a few A-side operand vectors (query rows, or probability rows)
// detected against many B-side vectors (keys, or value columns) at once, laid out so the loop
// over B vectors is contiguous and vectorises. Same physics as SignalChain::detect, element for
// element (same noise counters), only faster.
#pragma once

#include "pfa/photonic/signal_chain.h"

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace pfa::photonic::detail {

// 64-byte aligned storage: the row kernel reads B in whole cache lines.
template <class T>
struct CacheAligned {
  using value_type = T;
  CacheAligned() = default;
  template <class U>
  CacheAligned(const CacheAligned<U>&) {}
  T* allocate(size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64}));
  }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t{64}); }
  template <class U>
  bool operator==(const CacheAligned<U>&) const { return true; }
};
using AlignedFloats = std::vector<float, CacheAligned<float>>;

// B-side operands laid out for the row kernel in tiles of 16 vectors: tile j holds vectors
// 16 j .. 16 j + 15, chunk by chunk, so the detections of 16 outputs over the whole reduction
// read one contiguous stretch and the outputs stay in registers. (With one row per channel,
// 8 KB apart at L = 2048, read 512 vectors at a time, the fused kernel ran 1.4x slower: it
// streams all of B once per block of rows.) Vectors past n are zero.
struct TransposedB {
  int64_t n = 0, ld = 0, chunks = 0;  // ld: n rounded up to 16
  int lambda = 0;
  AlignedFloats optical;  // [n / 16][chunk][channel][n % 16]
  AlignedFloats scales;   // [n / 16][chunk][n % 16]

  TransposedB() = default;
  TransposedB(int64_t vectors, int64_t chunk_count, int channels)
      : n(vectors), ld((vectors + 15) / 16 * 16), chunks(chunk_count), lambda(channels),
        optical(static_cast<size_t>(ld * chunks * channels), 0.0f),
        scales(static_cast<size_t>(ld * chunks), 0.0f) {}
  size_t at(int64_t vector, int64_t chunk, int channel) const {
    const int64_t tile = vector / 16, lane = vector % 16;
    return static_cast<size_t>(((tile * chunks + chunk) * lambda + channel) * 16 + lane);
  }
  size_t scale_at(int64_t vector, int64_t chunk) const {
    return static_cast<size_t>(((vector / 16) * chunks + chunk) * 16 + vector % 16);
  }
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
// b's scale of (n, c), for n in the range and every row t of the block. Each output is summed
// over the chunks in order, starting from 0 or from acc.
void detect_rows(const RowBlock& rows, const TransposedB& b, const DetectRange& range,
                 const LaneNodes& nodes, const RowNoise& noise, const AdcRange& adc,
                 int64_t& clipped);

// The same without the fused AVX-512 kernel: what CPUs without AVX-512 and VAES run (exposed so
// that tests check it on every CPU).
void detect_rows_portable(const RowBlock& rows, const TransposedB& b, const DetectRange& range,
                          const LaneNodes& nodes, const RowNoise& noise, const AdcRange& adc,
                          int64_t& clipped);

}  // namespace pfa::photonic::detail

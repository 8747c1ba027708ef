// A counter-based noise generator: every noise sample is a pure function of (seed, stream,
// counter), so the simulated output does not depend on thread count or scheduling, and the same
// seed always gives the same output.
#pragma once

#include <cstdint>

namespace pfa::photonic {

// A 64-bit finaliser (the splitmix64 mixing steps): every input bit affects every output bit.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

inline uint64_t stream_key(uint64_t seed, uint64_t stream) {
  return mix64(seed ^ mix64(stream + 0x9e3779b97f4a7c15ull));
}

// An approximately standard-normal sample: the sum of four uniform 16-bit draws (Irwin-Hall),
// scaled to unit variance. Its tails stop at 3.46 sigma, which is immaterial at the error levels
// simulated here, and it costs one hash instead of a logarithm and a cosine.
inline float gaussian(uint64_t key, uint64_t counter) {
  const uint64_t r = mix64(key + counter * 0x9e3779b97f4a7c15ull);
  const int64_t sum = static_cast<int64_t>(r & 0xffff) + static_cast<int64_t>((r >> 16) & 0xffff) +
                      static_cast<int64_t>((r >> 32) & 0xffff) + static_cast<int64_t>(r >> 48);
  // mean 4 * 32767.5, variance 4 * (65536^2 - 1) / 12
  constexpr double kMean = 131070.0;
  constexpr double kInvStd = 1.0 / 37837.2270;  // 1 / sqrt(4 (65536^2 - 1) / 12)
  return static_cast<float>((static_cast<double>(sum) - kMean) * kInvStd);
}

// A 32-bit integer hash (xorshift-multiply rounds). Only 32-bit multiplies, so loops over it
// vectorise.
inline uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

// The detector-noise sample of the signal chain: Irwin-Hall(4) like gaussian(), the sum of four
// uniform 16-bit values scaled to unit variance, drawn from ARS-5 (Salmon et al., "Parallel random
// numbers: as easy as 1, 2, 3", SC 2011: five AES rounds keyed by a Weyl sequence over the key, a
// counter-based generator that passes the TestU01 BigCrush battery). Detection (n, chunk) of a
// product whose noise counter is n * stride + chunk takes 32-bit word n % 4 of two AES blocks
// shared by the four detections n & ~3 .. (n & ~3) + 3 of that chunk: the block whose first word
// is (n & ~3) * stride + chunk and second word 0, and the same with second word 1. `key` is a
// stream_key(). Pure function of its arguments; AES-NI where the CPU has it, the same bits
// computed in software otherwise.
float detector_noise(uint64_t key, uint32_t n, uint32_t chunk, uint32_t stride);

// The ARS-5 block function behind detector_noise: 128-bit counter block in[4] (little-endian
// 32-bit words) under the 128-bit key (key, key ^ 0x5851f42d4c957f2d).
void ars5_block(uint64_t key, const uint32_t in[4], uint32_t out[4]);
void ars5_block_software(uint64_t key, const uint32_t in[4], uint32_t out[4]);  // no AES-NI

// The round keys ARS-5 uses for `key` (6 x 128 bits, as two 64-bit halves each: lo, hi).
inline void ars5_round_keys(uint64_t key, uint64_t rk[6][2]) {
  uint64_t lo = key, hi = key ^ 0x5851f42d4c957f2dull;
  for (int r = 0; r < 6; ++r) {
    rk[r][0] = lo;
    rk[r][1] = hi;
    lo += 0x9e3779b97f4a7c15ull;  // Weyl increments (the ARS key schedule)
    hi += 0xbb67ae8584caa73bull;
  }
}

// The Irwin-Hall(4) value of two 32-bit words: sum of their 16-bit halves, unit variance.
inline float irwin_hall4(uint32_t a, uint32_t b) {
  const uint32_t sum = (a & 0xffffu) + (a >> 16) + (b & 0xffffu) + (b >> 16);
  return (static_cast<float>(sum) - 131070.0f) * (1.0f / 37837.227f);
}

// Uniform in [0, 1).
inline double uniform(uint64_t key, uint64_t counter) {
  return static_cast<double>(mix64(key + counter * 0x9e3779b97f4a7c15ull) >> 11) * 0x1.0p-53;
}

}  // namespace pfa::photonic

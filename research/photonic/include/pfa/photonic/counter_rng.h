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

// The detector-noise sample of the signal chain: Irwin-Hall(4) like gaussian(), from two 32-bit
// hashes of (key, counter). `key` is a stream_key().
inline float gaussian32(uint64_t key, uint32_t counter) {
  const uint32_t a = hash32(counter + static_cast<uint32_t>(key));
  const uint32_t b = hash32(a ^ static_cast<uint32_t>(key >> 32));
  const uint32_t sum = (a & 0xffffu) + (a >> 16) + (b & 0xffffu) + (b >> 16);
  return (static_cast<float>(sum) - 131070.0f) * (1.0f / 37837.227f);
}

// Uniform in [0, 1).
inline double uniform(uint64_t key, uint64_t counter) {
  return static_cast<double>(mix64(key + counter * 0x9e3779b97f4a7c15ull) >> 11) * 0x1.0p-53;
}

}  // namespace pfa::photonic

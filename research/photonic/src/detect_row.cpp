#include "detect_row.h"

#include "pfa/photonic/counter_rng.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace pfa::photonic::detail {

// Per block of B vectors and chunk: the analog sums over the lambda channels, then noise, ADC,
// digital correction and accumulation. kL > 0 fixes the channel count at compile time so the
// channel sum unrolls and the loops over n vectorise.
constexpr int64_t kBlock = 512;
using Floats16 = float __attribute__((vector_size(64)));  // a zmm, two ymm or four xmm  // B vectors per pass: the analog sums stay in L1

template <int kL>
__attribute__((always_inline)) inline void detect_row_impl(
    const float* a, const float* a_scales, int64_t chunks, const TransposedB& b, int64_t n_end,
    const LaneNodes& nodes, const RowNoise& noise, const AdcRange& adc, float* acc, float* work,
    int64_t& clipped) {
  const int L = kL > 0 ? kL : b.lambda;
  const int64_t ld = b.ld;
  const float sigma = noise.sigma;
  const float inv_step = adc.inv_step, step = adc.step;
  const float code_min = adc.code_min, code_max = adc.code_max;
  const uint32_t k0 = static_cast<uint32_t>(noise.key), k1 = static_cast<uint32_t>(noise.key >> 32);
  const uint32_t stride = noise.counter_stride;
  const float* gain = nodes.gain.data();
  const float* offset = nodes.offset.data();
  const float* out_offset = nodes.out_offset.data();
  const float* out_gain = nodes.out_gain.data();
  for (int64_t n = 0; n < n_end; ++n) acc[n] = 0.0f;
  for (int64_t n0 = 0; n0 < n_end; n0 += kBlock) {
    const int64_t len = std::min(kBlock, n_end - n0);
    float* out = acc + n0;
    for (int64_t c = 0; c < chunks; ++c) {
      const float* __restrict bc = b.optical.data() + c * L * ld + n0;
      const float* ac = a + c * L;
      // Analog sums over the lambda channels for len B vectors (the A values held in registers).
      float* __restrict dots = work;
      constexpr int kFixed = kL > 0 ? kL : 1;
      float av[kFixed];
      for (int k = 0; k < kFixed; ++k) av[k] = ac[k];
      int64_t n = 0;
      for (; n + 16 <= len; n += 16) {  // 16 B vectors at a time, explicitly vectorised
        Floats16 dot = {};
#pragma GCC unroll 16
        for (int k = 0; k < kFixed; ++k) {
          Floats16 row;
          std::memcpy(&row, bc + k * ld + n, sizeof row);
          dot += av[k] * row;
        }
        std::memcpy(dots + n, &dot, sizeof dot);
      }
      for (; n < len; ++n) {
        float dot = 0.0f;
        for (int k = 0; k < kFixed; ++k) dot += av[k] * bc[k * ld + n];
        dots[n] = dot;
      }
      for (int k = kFixed; k < L; ++k) {  // channels beyond a fixed count
        const float* __restrict row = bc + k * ld;
        for (int64_t n = 0; n < len; ++n) dots[n] += ac[k] * row[n];
      }
      const float as = a_scales[c];
      const float* __restrict bs = b.scales.data() + c * ld + n0;
      const float* __restrict g = gain + n0;
      const float* __restrict off = offset + n0;
      const float* __restrict oo = out_offset + n0;
      const float* __restrict og = out_gain + n0;
      const uint32_t base = static_cast<uint32_t>(c) + static_cast<uint32_t>(n0) * stride;
      int32_t clips = 0;
      for (int64_t n = 0; n < len; ++n) {
        float y = g[n] * dots[n] + off[n];
        // Detector noise (the same draw as gaussian32(key, n * stride + c)).
        const uint32_t counter = base + static_cast<uint32_t>(n) * stride;
        const uint32_t h1 = hash32(counter + k0);
        const uint32_t h2 = hash32(h1 ^ k1);
        const uint32_t sum = (h1 & 0xffffu) + (h1 >> 16) + (h2 & 0xffffu) + (h2 >> 16);
        y += sigma * ((static_cast<float>(sum) - 131070.0f) * (1.0f / 37837.227f));
        // ADC: nearest code, clipped at the full scale.
        float code = std::nearbyint(y * inv_step);
        clips += (code > code_max) + (code < code_min);
        code = std::min(std::max(code, code_min), code_max);
        out[n] += (code * step - oo[n]) * og[n] * as * bs[n];
      }
      clipped += clips;
    }
  }
}

// Compiled for AVX-512, AVX2 and baseline x86-64; the loader picks the best the CPU has.
__attribute__((target_clones("avx512f", "avx2", "default")))
void detect_row(const float* a, const float* a_scales, int64_t chunks, const TransposedB& b,
                int64_t n_end, const LaneNodes& nodes, const RowNoise& noise,
                const AdcRange& adc, float* acc, float* work, int64_t& clipped) {
  switch (b.lambda) {
    case 12:
      detect_row_impl<12>(a, a_scales, chunks, b, n_end, nodes, noise, adc, acc, work, clipped);
      break;
    case 16:
      detect_row_impl<16>(a, a_scales, chunks, b, n_end, nodes, noise, adc, acc, work, clipped);
      break;
    default:
      detect_row_impl<0>(a, a_scales, chunks, b, n_end, nodes, noise, adc, acc, work, clipped);
      break;
  }
}

}  // namespace pfa::photonic::detail

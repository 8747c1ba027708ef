#include "detect_row.h"

#include "pfa/photonic/counter_rng.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace pfa::photonic::detail {

namespace {
constexpr int64_t kBlock = 512;  // B vectors per pass: the analog sums stay in L1
using Floats16 = float __attribute__((vector_size(64)));  // a zmm, two ymm or four xmm
}  // namespace

// Per block of B vectors and chunk: the analog sums over the lambda channels for every row of the
// block (each B value loaded once), then per row noise, ADC, digital correction and accumulation.
// kL > 0 fixes the channel count at compile time so the channel sum unrolls; R is the row count.
template <int kL, int R>
__attribute__((always_inline)) inline void detect_rows_impl(
    const RowBlock& rows, const TransposedB& b, const DetectRange& range, const LaneNodes& nodes,
    const RowNoise& noise, const AdcRange& adc, float* work, int64_t& clipped) {
  const int L = kL > 0 ? kL : b.lambda;
  constexpr int kFixed = kL > 0 ? kL : 1;
  const int64_t ld = b.ld;
  const float sigma = noise.sigma;
  const float inv_step = adc.inv_step, step = adc.step;
  const float code_min = adc.code_min, code_max = adc.code_max;
  const uint32_t stride = noise.counter_stride;
  if (range.zero_acc) {
    for (int t = 0; t < R; ++t)
      for (int64_t n = range.n_begin; n < range.n_end; ++n) rows.acc[t][n] = 0.0f;
  }
  for (int64_t n0 = range.n_begin; n0 < range.n_end; n0 += kBlock) {
    const int64_t len = std::min(kBlock, range.n_end - n0);
    for (int64_t c = range.chunk_begin; c < range.chunk_end; ++c) {
      const float* __restrict bc = b.optical.data() + c * L * ld + n0;
      // Analog sums over the lambda channels, the A values held in registers.
      float av[R][kFixed];
      for (int t = 0; t < R; ++t)
        for (int k = 0; k < kFixed; ++k) av[t][k] = rows.a[t][c * L + k];
      int64_t n = 0;
      for (; n + 16 <= len; n += 16) {  // 16 B vectors at a time, explicitly vectorised
        Floats16 dot[R] = {};
#pragma GCC unroll 16
        for (int k = 0; k < kFixed; ++k) {
          Floats16 bv;
          std::memcpy(&bv, bc + k * ld + n, sizeof bv);
          for (int t = 0; t < R; ++t) dot[t] += av[t][k] * bv;
        }
        for (int t = 0; t < R; ++t) std::memcpy(work + t * kBlock + n, &dot[t], sizeof dot[t]);
      }
      for (; n < len; ++n) {
        for (int t = 0; t < R; ++t) {
          float dot = 0.0f;
          for (int k = 0; k < kFixed; ++k) dot += av[t][k] * bc[k * ld + n];
          work[t * kBlock + n] = dot;
        }
      }
      for (int k = kFixed; k < L; ++k) {  // channels beyond a fixed count
        const float* __restrict row = bc + k * ld;
        for (int t = 0; t < R; ++t) {
          const float ak = rows.a[t][c * L + k];
          float* __restrict dots = work + t * kBlock;
          for (int64_t m = 0; m < len; ++m) dots[m] += ak * row[m];
        }
      }
      const float* __restrict bs = b.scales.data() + c * ld + n0;
      const float* __restrict g = nodes.gain.data() + n0;
      const float* __restrict off = nodes.offset.data() + n0;
      const float* __restrict oo = nodes.out_offset.data() + n0;
      const float* __restrict og = nodes.out_gain.data() + n0;
      const uint32_t base = static_cast<uint32_t>(c) + static_cast<uint32_t>(n0) * stride;
      for (int t = 0; t < R; ++t) {
        const float* __restrict dots = work + t * kBlock;
        float* __restrict out = rows.acc[t] + n0;
        const float as = rows.a_scales[t][c];
        const uint32_t k0 = static_cast<uint32_t>(rows.noise_key[t]);
        const uint32_t k1 = static_cast<uint32_t>(rows.noise_key[t] >> 32);
        int32_t clips = 0;
        for (int64_t m = 0; m < len; ++m) {
          float y = g[m] * dots[m] + off[m];
          // Detector noise (the same draw as gaussian32(key, n * stride + c)).
          const uint32_t counter = base + static_cast<uint32_t>(m) * stride;
          const uint32_t h1 = hash32(counter + k0);
          const uint32_t h2 = hash32(h1 ^ k1);
          const uint32_t sum = (h1 & 0xffffu) + (h1 >> 16) + (h2 & 0xffffu) + (h2 >> 16);
          y += sigma * ((static_cast<float>(sum) - 131070.0f) * (1.0f / 37837.227f));
          // ADC: nearest code, clipped at the full scale.
          float code = std::nearbyint(y * inv_step);
          clips += (code > code_max) + (code < code_min);
          code = std::min(std::max(code, code_min), code_max);
          out[m] += (code * step - oo[m]) * og[m] * as * bs[m];
        }
        clipped += clips;
      }
    }
  }
}

template <int kL>
__attribute__((always_inline)) inline void detect_rows_by_count(
    const RowBlock& rows, const TransposedB& b, const DetectRange& range, const LaneNodes& nodes,
    const RowNoise& noise, const AdcRange& adc, float* work, int64_t& clipped) {
  switch (rows.rows) {
    case 1: detect_rows_impl<kL, 1>(rows, b, range, nodes, noise, adc, work, clipped); break;
    case 2: detect_rows_impl<kL, 2>(rows, b, range, nodes, noise, adc, work, clipped); break;
    case 3: detect_rows_impl<kL, 3>(rows, b, range, nodes, noise, adc, work, clipped); break;
    case 4: detect_rows_impl<kL, 4>(rows, b, range, nodes, noise, adc, work, clipped); break;
    default: break;
  }
}

// Compiled for AVX-512, AVX2 and baseline x86-64; the loader picks the best the CPU has.
__attribute__((target_clones("avx512f", "avx2", "default")))
void detect_rows(const RowBlock& rows, const TransposedB& b, const DetectRange& range,
                 const LaneNodes& nodes, const RowNoise& noise, const AdcRange& adc, float* work,
                 int64_t& clipped) {
  switch (b.lambda) {
    case 12: detect_rows_by_count<12>(rows, b, range, nodes, noise, adc, work, clipped); break;
    case 16: detect_rows_by_count<16>(rows, b, range, nodes, noise, adc, work, clipped); break;
    default: detect_rows_by_count<0>(rows, b, range, nodes, noise, adc, work, clipped); break;
  }
}

}  // namespace pfa::photonic::detail

#include "detect_row.h"

#include "pfa/photonic/counter_rng.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <immintrin.h>

// GCC 12 warns about the undefined pass-through operands inside its own AVX-512 intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

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

// The portable kernel, compiled for AVX2 and baseline x86-64; AVX-512 CPUs take the fused kernel
// below.
__attribute__((target_clones("avx2", "default")))
void detect_rows_portable(const RowBlock& rows, const TransposedB& b, const DetectRange& range,
                          const LaneNodes& nodes, const RowNoise& noise, const AdcRange& adc,
                          float* work, int64_t& clipped) {
  switch (b.lambda) {
    case 12: detect_rows_by_count<12>(rows, b, range, nodes, noise, adc, work, clipped); break;
    case 16: detect_rows_by_count<16>(rows, b, range, nodes, noise, adc, work, clipped); break;
    default: detect_rows_by_count<0>(rows, b, range, nodes, noise, adc, work, clipped); break;
  }
}

// ---- AVX-512 (F + BW): the channel sums, noise, ADC and correction fused in one pass ----------
// The same detections as detect_rows_impl, the same noise draws (same hashes of the same
// counters), the same ADC rounding and clipping; per-node constants are folded into the ADC's
// units once per block, so values can differ from the portable kernel in the last bit (and a
// detection that lands within an ulp of a code boundary can read the neighbouring code). The
// analog sums stay in registers (no round trip through `work`), the noise counter is a running
// vector, the Irwin-Hall sum of the 16-bit halves is one multiply-add of word pairs per hash, and
// clips are counted with one compare per vector.
#define PFA_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,bmi2")))

namespace {

// hash32 of every lane, returned with the top bit of each 16-bit half flipped (x ^ 0x80008000):
// read as signed, each half is then its unsigned value minus 32768.
PFA_AVX512 inline __m512i hash32_x16_offset(__m512i x) {
  x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
  x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x7feb352d));
  x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
  x = _mm512_mullo_epi32(x, _mm512_set1_epi32(static_cast<int>(0x846ca68bu)));
  return _mm512_ternarylogic_epi32(x, _mm512_srli_epi32(x, 16),
                                   _mm512_set1_epi32(static_cast<int>(0x80008000u)), 0x96);
}

template <int kL, int R>
PFA_AVX512 void detect_rows_avx512_impl(const RowBlock& rows, const TransposedB& b,
                                        const DetectRange& range, const LaneNodes& nodes,
                                        const RowNoise& noise, const AdcRange& adc,
                                        int64_t& clipped) {
  const int64_t ld = b.ld;
  // Everything up to the ADC in units of its step: y / step = (g / step) dot + off / step +
  // (sigma / step) n. The noise n = (u - 131070) / 37837.227 for u the sum of the four unsigned
  // 16-bit halves of the two hashes, i.e. (s + 2) / 37837.227 for s the sum of the halves offset
  // by -32768 (what the word multiply-add sums); the constant goes into the offset.
  const float noise_step = noise.sigma * (1.0f / 37837.227f) * adc.inv_step;
  const __m512 inv_step = _mm512_set1_ps(adc.inv_step);
  const __m512 noise_scale = _mm512_set1_ps(noise_step);
  const __m512 noise_mean = _mm512_set1_ps(2.0f * noise_step);
  const __m512 step = _mm512_set1_ps(adc.step);
  const __m512 code_min = _mm512_set1_ps(adc.code_min), code_max = _mm512_set1_ps(adc.code_max);
  const __m512i ones16 = _mm512_set1_epi16(1);
  const uint32_t stride = noise.counter_stride;
  const __m512i lane_counter =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(static_cast<int>(stride)));
  const __m512i counter_step = _mm512_set1_epi32(static_cast<int>(16u * stride));
  __m512i k0[R], k1[R];
  for (int t = 0; t < R; ++t) {
    k0[t] = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(rows.noise_key[t])));
    k1[t] = _mm512_set1_epi32(
        static_cast<int>(static_cast<uint32_t>(rows.noise_key[t] >> 32) ^ 0x80008000u));
  }
  __m512i clips = _mm512_setzero_si512();  // one counter for all rows: fewer registers live
  const __m512i minus_one = _mm512_set1_epi32(-1);
  if (range.zero_acc) {
    for (int t = 0; t < R; ++t)
      for (int64_t n = range.n_begin; n < range.n_end; ++n) rows.acc[t][n] = 0.0f;
  }
  // Node constants of this block of B vectors, folded once for every chunk and row: gain and
  // offset in ADC steps, correction gain times the step, correction offset times the gain.
  alignas(64) float gain_s[kBlock], offset_s[kBlock], gain_c[kBlock], offset_c[kBlock];
  for (int64_t n0 = range.n_begin; n0 < range.n_end; n0 += kBlock) {
    const int64_t len = std::min(kBlock, range.n_end - n0);
    const int64_t padded = (len + 15) / 16 * 16;
    for (int64_t n = 0; n < padded; n += 16) {
      const __mmask16 m = len - n >= 16 ? static_cast<__mmask16>(0xffff)
                                        : static_cast<__mmask16>((1u << (len - n)) - 1);
      const __m512 og = _mm512_maskz_loadu_ps(m, nodes.out_gain.data() + n0 + n);
      _mm512_store_ps(gain_s + n, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, nodes.gain.data() + n0 + n), inv_step));
      _mm512_store_ps(offset_s + n,
                      _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, nodes.offset.data() + n0 + n),
                                      inv_step, noise_mean));
      _mm512_store_ps(gain_c + n, _mm512_mul_ps(og, step));
      _mm512_store_ps(offset_c + n,
                      _mm512_mul_ps(_mm512_maskz_loadu_ps(m, nodes.out_offset.data() + n0 + n), og));
    }
    for (int64_t c = range.chunk_begin; c < range.chunk_end; ++c) {
      const float* bc = b.optical.data() + c * kL * ld + n0;
      float av[R][kL];
      for (int t = 0; t < R; ++t)
        for (int k = 0; k < kL; ++k) av[t][k] = rows.a[t][c * kL + k];
      const float* bs = b.scales.data() + c * ld + n0;
      const uint32_t base = static_cast<uint32_t>(c) + static_cast<uint32_t>(n0) * stride;
      __m512i counter = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(base)), lane_counter);
      __m512 as[R];
      for (int t = 0; t < R; ++t) as[t] = _mm512_set1_ps(rows.a_scales[t][c]);
      for (int64_t n = 0; n < len; n += 16) {
        // B operands are padded to a multiple of 16 vectors; the outputs are not.
        const __mmask16 m = len - n >= 16 ? static_cast<__mmask16>(0xffff)
                                          : static_cast<__mmask16>((1u << (len - n)) - 1);
        __m512 dot[R];
        {
          const __m512 b0 = _mm512_loadu_ps(bc + n);
          for (int t = 0; t < R; ++t) dot[t] = _mm512_mul_ps(_mm512_set1_ps(av[t][0]), b0);
        }
#pragma GCC unroll 16
        for (int k = 1; k < kL; ++k) {
          const __m512 bv = _mm512_loadu_ps(bc + k * ld + n);
          for (int t = 0; t < R; ++t) dot[t] = _mm512_fmadd_ps(_mm512_set1_ps(av[t][k]), bv, dot[t]);
        }
        const __m512 gv = _mm512_load_ps(gain_s + n);
        const __m512 offv = _mm512_load_ps(offset_s + n);
        // Digital correction times the B block scale: out += a_scale (code P - Q).
        const __m512 bsv = _mm512_loadu_ps(bs + n);
        const __m512 pv = _mm512_mul_ps(_mm512_load_ps(gain_c + n), bsv);
        const __m512 qv = _mm512_mul_ps(_mm512_load_ps(offset_c + n), bsv);
        for (int t = 0; t < R; ++t) {
          // h1 ^ k1 is the second hash's input: k1 carries the flip back out.
          const __m512i h1 = hash32_x16_offset(_mm512_add_epi32(counter, k0[t]));
          const __m512i h2 = hash32_x16_offset(_mm512_xor_si512(h1, k1[t]));
          const __m512i sum = _mm512_add_epi32(_mm512_madd_epi16(h1, ones16),
                                               _mm512_madd_epi16(h2, ones16));
          __m512 y = _mm512_fmadd_ps(gv, dot[t], offv);
          y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), noise_scale, y);
          // ADC: nearest code, clipped at the full scale, clips counted.
          const __m512 code = _mm512_roundscale_ps(y, _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC);
          const __m512 held = _mm512_min_ps(_mm512_max_ps(code, code_min), code_max);
          const __mmask16 clip = _mm512_mask_cmp_ps_mask(m, held, code, _CMP_NEQ_UQ);
          clips = _mm512_mask_sub_epi32(clips, clip, clips, minus_one);
          float* out = rows.acc[t] + n0 + n;
          const __m512 v = _mm512_fmadd_ps(_mm512_fmsub_ps(held, pv, qv), as[t],
                                           _mm512_maskz_loadu_ps(m, out));
          _mm512_mask_storeu_ps(out, m, v);
        }
        counter = _mm512_add_epi32(counter, counter_step);
      }
    }
  }
  clipped += _mm512_reduce_add_epi32(clips);
}

template <int kL>
PFA_AVX512 bool detect_rows_avx512_rows(const RowBlock& rows, const TransposedB& b,
                                        const DetectRange& range, const LaneNodes& nodes,
                                        const RowNoise& noise, const AdcRange& adc,
                                        int64_t& clipped) {
  switch (rows.rows) {
    case 1: detect_rows_avx512_impl<kL, 1>(rows, b, range, nodes, noise, adc, clipped); return true;
    case 2: detect_rows_avx512_impl<kL, 2>(rows, b, range, nodes, noise, adc, clipped); return true;
    case 3: detect_rows_avx512_impl<kL, 3>(rows, b, range, nodes, noise, adc, clipped); return true;
    case 4: detect_rows_avx512_impl<kL, 4>(rows, b, range, nodes, noise, adc, clipped); return true;
    default: return rows.rows <= 0;
  }
}

// False when this channel count has no fused kernel (the portable one runs instead).
PFA_AVX512 bool detect_rows_avx512(const RowBlock& rows, const TransposedB& b,
                                   const DetectRange& range, const LaneNodes& nodes,
                                   const RowNoise& noise, const AdcRange& adc, int64_t& clipped) {
  switch (b.lambda) {
    case 12: return detect_rows_avx512_rows<12>(rows, b, range, nodes, noise, adc, clipped);
    case 16: return detect_rows_avx512_rows<16>(rows, b, range, nodes, noise, adc, clipped);
    default: return false;
  }
}

bool has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}

}  // namespace


void detect_rows(const RowBlock& rows, const TransposedB& b, const DetectRange& range,
                 const LaneNodes& nodes, const RowNoise& noise, const AdcRange& adc, float* work,
                 int64_t& clipped) {
  static const bool avx512 = has_avx512();
  if (avx512 && detect_rows_avx512(rows, b, range, nodes, noise, adc, clipped)) return;
  detect_rows_portable(rows, b, range, nodes, noise, adc, work, clipped);
}

}  // namespace pfa::photonic::detail

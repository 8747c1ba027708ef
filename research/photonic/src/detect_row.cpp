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
using Floats16 = float __attribute__((vector_size(64)));  // a zmm, two ymm or four xmm

// Lanes of the 16 B vectors from p that lie in [n_begin, n_end).
inline uint32_t lane_bits(const DetectRange& range, int64_t p) {
  const int64_t lo = std::max<int64_t>(0, range.n_begin - p);
  const int64_t hi = std::min<int64_t>(16, range.n_end - p);
  const uint32_t upper = hi >= 16 ? 0xffffu : (1u << hi) - 1;
  return upper & ~((1u << lo) - 1);
}
}  // namespace

// One tile of 16 B vectors at a time: per chunk, the analog sums over the lambda channels for
// every row of the block (each B value loaded once), then per row and vector noise, ADC, digital
// correction, accumulated over the chunks in a local tile. kL > 0 fixes the channel count at
// compile time so the channel sum unrolls; R is the row count.
template <int kL, int R>
__attribute__((always_inline)) inline void detect_rows_impl(
    const RowBlock& rows, const TransposedB& b, const DetectRange& range, const LaneNodes& nodes,
    const RowNoise& noise, const AdcRange& adc, int64_t& clipped) {
  const int L = kL > 0 ? kL : b.lambda;
  const float sigma = noise.sigma;
  const float inv_step = adc.inv_step, step = adc.step;
  const float code_min = adc.code_min, code_max = adc.code_max;
  const uint32_t stride = noise.counter_stride;
  for (int64_t n0 = range.n_begin & ~int64_t{15}; n0 < range.n_end; n0 += 16) {
    const int lo = static_cast<int>(std::max<int64_t>(0, range.n_begin - n0));
    const int hi = static_cast<int>(std::min<int64_t>(16, range.n_end - n0));
    float acc[R][16];
    for (int t = 0; t < R; ++t)
      for (int m = lo; m < hi; ++m) acc[t][m] = range.zero_acc ? 0.0f : rows.acc[t][n0 + m];
    const float* __restrict g = nodes.gain.data() + n0;
    const float* __restrict off = nodes.offset.data() + n0;
    const float* __restrict oo = nodes.out_offset.data() + n0;
    const float* __restrict og = nodes.out_gain.data() + n0;
    for (int64_t c = range.chunk_begin; c < range.chunk_end; ++c) {
      const float* __restrict bc = b.optical.data() + b.at(n0, c, 0);
      const float* __restrict bs = b.scales.data() + b.scale_at(n0, c);
      Floats16 dot[R] = {};
      for (int k = 0; k < L; ++k) {
        Floats16 bv;
        std::memcpy(&bv, bc + k * 16, sizeof bv);
        for (int t = 0; t < R; ++t) dot[t] += rows.a[t][c * L + k] * bv;
      }
      for (int t = 0; t < R; ++t) {
        const float as = rows.a_scales[t][c];
        int32_t clips = 0;
        for (int m = lo; m < hi; ++m) {
          float y = g[m] * dot[t][m] + off[m];
          y += sigma * detector_noise(rows.noise_key[t], static_cast<uint32_t>(n0 + m),
                                      static_cast<uint32_t>(c), stride);
          // ADC: nearest code, clipped at the full scale.
          float code = std::nearbyint(y * inv_step);
          clips += (code > code_max) + (code < code_min);
          code = std::min(std::max(code, code_min), code_max);
          acc[t][m] += (code * step - oo[m]) * og[m] * as * bs[m];
        }
        clipped += clips;
      }
    }
    for (int t = 0; t < R; ++t)
      for (int m = lo; m < hi; ++m) rows.acc[t][n0 + m] = acc[t][m];
  }
}

template <int kL>
__attribute__((always_inline)) inline void detect_rows_by_count(
    const RowBlock& rows, const TransposedB& b, const DetectRange& range, const LaneNodes& nodes,
    const RowNoise& noise, const AdcRange& adc, int64_t& clipped) {
  switch (rows.rows) {
    case 1: detect_rows_impl<kL, 1>(rows, b, range, nodes, noise, adc, clipped); break;
    case 2: detect_rows_impl<kL, 2>(rows, b, range, nodes, noise, adc, clipped); break;
    case 3: detect_rows_impl<kL, 3>(rows, b, range, nodes, noise, adc, clipped); break;
    case 4: detect_rows_impl<kL, 4>(rows, b, range, nodes, noise, adc, clipped); break;
    default: break;
  }
}

// The portable kernel, compiled for AVX2 and baseline x86-64; AVX-512 CPUs take the fused kernel
// below.
__attribute__((target_clones("avx2", "default")))
void detect_rows_portable(const RowBlock& rows, const TransposedB& b, const DetectRange& range,
                          const LaneNodes& nodes, const RowNoise& noise, const AdcRange& adc,
                          int64_t& clipped) {
  switch (b.lambda) {
    case 12: detect_rows_by_count<12>(rows, b, range, nodes, noise, adc, clipped); break;
    case 16: detect_rows_by_count<16>(rows, b, range, nodes, noise, adc, clipped); break;
    default: detect_rows_by_count<0>(rows, b, range, nodes, noise, adc, clipped); break;
  }
}

// ---- AVX-512 (F + BW): the channel sums, noise, ADC and correction fused in one pass ----------
// The same detections as detect_rows_impl, the same noise draws (same hashes of the same
// counters), the same ADC rounding and clipping; per-node constants are folded into the ADC's
// units once per tile, so values can differ from the portable kernel in the last bit (and a
// detection that lands within an ulp of a code boundary can read the neighbouring code). The
// analog sums and the outputs stay in registers, the noise counter is a running vector, the
// Irwin-Hall sum of the 16-bit halves is one multiply-add of word pairs per hash, and clips are
// counted with one compare per vector.
#define PFA_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,bmi2,aes,vaes")))

namespace {

// ARS-5 round keys of one row's noise key, each 128-bit key repeated over the four lanes of a
// zmm: the whitening key for the blocks with second word 0 and 1, four AESENC keys, and the
// AESENCLAST key with the top bit of every 16-bit half flipped (read as signed, each half of the
// output is then its unsigned value minus 32768).
struct ArsKeys {
  __m512i first[2], middle[4], last;
};

PFA_AVX512 inline __m512i wide(uint64_t lo, uint64_t hi) {
  return _mm512_broadcast_i32x4(
      _mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo)));
}

PFA_AVX512 inline ArsKeys ars_keys(uint64_t key) {
  uint64_t rk[6][2];
  ars5_round_keys(key, rk);
  ArsKeys k;
  k.first[0] = wide(rk[0][0], rk[0][1]);
  k.first[1] = wide(rk[0][0] ^ (uint64_t{1} << 32), rk[0][1]);  // second word of the block 1
  for (int r = 0; r < 4; ++r) k.middle[r] = wide(rk[r + 1][0], rk[r + 1][1]);
  k.last = wide(rk[5][0] ^ 0x8000800080008000ull, rk[5][1] ^ 0x8000800080008000ull);
  return k;
}

template <int kL, int R>
PFA_AVX512 void detect_rows_avx512_impl(const RowBlock& rows, const TransposedB& b,
                                        const DetectRange& range, const LaneNodes& nodes,
                                        const RowNoise& noise, const AdcRange& adc,
                                        int64_t& clipped) {
  // Everything up to the ADC in units of its step: y / step = (g / step) dot + off / step +
  // (sigma / step) n. The noise n = (u - 131070) / 37837.227 for u the sum of the four unsigned
  // 16-bit halves of the two ARS words, i.e. (s + 2) / 37837.227 for s the sum of the halves
  // offset by -32768 (what the word multiply-add sums); the constant goes into the offset.
  const float noise_step = noise.sigma * (1.0f / 37837.227f) * adc.inv_step;
  const __m512 inv_step = _mm512_set1_ps(adc.inv_step);
  const __m512 noise_scale = _mm512_set1_ps(noise_step);
  const __m512 noise_mean = _mm512_set1_ps(2.0f * noise_step);
  const __m512 step = _mm512_set1_ps(adc.step);
  const __m512 code_min = _mm512_set1_ps(adc.code_min), code_max = _mm512_set1_ps(adc.code_max);
  const __m512i ones16 = _mm512_set1_epi16(1);
  const uint32_t stride = noise.counter_stride;
  // The ARS counter blocks of 16 detections p .. p + 15 (p a multiple of 16) of chunk c: block j
  // (lane j) has first word (p + 4 j) * stride + c, the others zero (the second word is set by
  // the whitening key). The next chunk adds 1 to the first words.
  constexpr __mmask16 kFirstWords = 0x1111;
  const __m512i group_counter = _mm512_maskz_mullo_epi32(
      kFirstWords, _mm512_setr_epi32(0, 0, 0, 0, 4, 0, 0, 0, 8, 0, 0, 0, 12, 0, 0, 0),
      _mm512_set1_epi32(static_cast<int>(stride)));
  const __m512i next_chunk = _mm512_maskz_set1_epi32(kFirstWords, 1);
  ArsKeys keys[R];
  for (int t = 0; t < R; ++t) keys[t] = ars_keys(rows.noise_key[t]);
  __m512i clips = _mm512_setzero_si512();  // one counter for all rows: fewer registers live
  const __m512i minus_one = _mm512_set1_epi32(-1);
  // One tile of 16 B vectors at a time (tiles are aligned to 16, like the noise blocks; lanes
  // outside [n_begin, n_end) are masked), all chunks of the range in the inner loop: the outputs
  // stay in registers and B is read in order.
  for (int64_t p = range.n_begin & ~int64_t{15}; p < range.n_end; p += 16) {
    const __mmask16 m = static_cast<__mmask16>(lane_bits(range, p));
    // Node constants of these vectors, folded once for every chunk and row: gain and offset in
    // ADC steps, correction gain times the step, correction offset times the gain.
    const __m512 og = _mm512_maskz_loadu_ps(m, nodes.out_gain.data() + p);
    const __m512 gv = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, nodes.gain.data() + p), inv_step);
    const __m512 offv =
        _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, nodes.offset.data() + p), inv_step, noise_mean);
    const __m512 gain_c = _mm512_mul_ps(og, step);
    const __m512 offset_c =
        _mm512_mul_ps(_mm512_maskz_loadu_ps(m, nodes.out_offset.data() + p), og);
    __m512 out[R];
    for (int t = 0; t < R; ++t)
      out[t] = range.zero_acc ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, rows.acc[t] + p);
    const uint32_t base =
        static_cast<uint32_t>(range.chunk_begin) + static_cast<uint32_t>(p) * stride;
    __m512i counter = _mm512_add_epi32(
        _mm512_maskz_set1_epi32(kFirstWords, static_cast<int>(base)), group_counter);
    const float* bc = b.optical.data() + b.at(p, range.chunk_begin, 0);
    const float* bs = b.scales.data() + b.scale_at(p, range.chunk_begin);
    for (int64_t c = range.chunk_begin; c < range.chunk_end; ++c, bc += kL * 16, bs += 16) {
      // Analog sums over the lambda channels, each B vector loaded once for all rows.
      __m512 dot[R];
      {
        const __m512 b0 = _mm512_load_ps(bc);
        for (int t = 0; t < R; ++t) dot[t] = _mm512_mul_ps(_mm512_set1_ps(rows.a[t][c * kL]), b0);
      }
#pragma GCC unroll 16
      for (int k = 1; k < kL; ++k) {
        const __m512 bv = _mm512_load_ps(bc + k * 16);
        for (int t = 0; t < R; ++t)
          dot[t] = _mm512_fmadd_ps(_mm512_set1_ps(rows.a[t][c * kL + k]), bv, dot[t]);
      }
      // Digital correction times the B block scale: out += a_scale (code P - Q).
      const __m512 bsv = _mm512_load_ps(bs);
      const __m512 pv = _mm512_mul_ps(gain_c, bsv);
      const __m512 qv = _mm512_mul_ps(offset_c, bsv);
      for (int t = 0; t < R; ++t) {
        // ARS-5 of the two blocks of each group of four detections; detection 4 j + i takes
        // word i of block j from both.
        __m512i w0 = _mm512_xor_si512(counter, keys[t].first[0]);
        __m512i w1 = _mm512_xor_si512(counter, keys[t].first[1]);
        for (int r = 0; r < 4; ++r) {
          w0 = _mm512_aesenc_epi128(w0, keys[t].middle[r]);
          w1 = _mm512_aesenc_epi128(w1, keys[t].middle[r]);
        }
        w0 = _mm512_aesenclast_epi128(w0, keys[t].last);
        w1 = _mm512_aesenclast_epi128(w1, keys[t].last);
        const __m512i sum = _mm512_add_epi32(_mm512_madd_epi16(w0, ones16),
                                             _mm512_madd_epi16(w1, ones16));
        __m512 y = _mm512_fmadd_ps(gv, dot[t], offv);
        y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), noise_scale, y);
        // ADC: nearest code, clipped at the full scale, clips counted.
        const __m512 code = _mm512_roundscale_ps(y, _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC);
        const __m512 held = _mm512_min_ps(_mm512_max_ps(code, code_min), code_max);
        const __mmask16 clip = _mm512_mask_cmp_ps_mask(m, held, code, _CMP_NEQ_UQ);
        clips = _mm512_mask_sub_epi32(clips, clip, clips, minus_one);
        out[t] = _mm512_fmadd_ps(_mm512_fmsub_ps(held, pv, qv),
                                 _mm512_set1_ps(rows.a_scales[t][c]), out[t]);
      }
      counter = _mm512_add_epi32(counter, next_chunk);
    }
    for (int t = 0; t < R; ++t) _mm512_mask_storeu_ps(rows.acc[t] + p, m, out[t]);
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
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("vaes");
}

}  // namespace


void detect_rows(const RowBlock& rows, const TransposedB& b, const DetectRange& range,
                 const LaneNodes& nodes, const RowNoise& noise, const AdcRange& adc,
                 int64_t& clipped) {
  static const bool avx512 = has_avx512();
  if (avx512 && detect_rows_avx512(rows, b, range, nodes, noise, adc, clipped)) return;
  detect_rows_portable(rows, b, range, nodes, noise, adc, clipped);
}

}  // namespace pfa::photonic::detail

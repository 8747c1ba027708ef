// 16-lane fp32 vector operations for the AVX-512 files (compiled with AVX-512 flags only).
#pragma once

#include "dtype_convert.h"
#include "tile_plan.h"

#include <immintrin.h>

#include <cstdint>

namespace pfa::kernels::cpu {
namespace {

struct Avx512Vec {
  using Reg = __m512;
  static constexpr int kWidth = 16;
  static constexpr int kRows = 6;  // 6 rows x 4 vectors = 24 of the 32 registers accumulate
  static constexpr int kCols = 4;
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg set1(float f) { return _mm512_set1_ps(f); }
  static Reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, Reg r) { _mm512_storeu_ps(p, r); }
  static Reg fmadd(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm512_sub_ps(a, b); }
  static Reg max(Reg a, Reg b) { return _mm512_max_ps(a, b); }
  static float reduce_max(Reg r) { return _mm512_reduce_max_ps(r); }
  static float reduce_add(Reg r) { return _mm512_reduce_add_ps(r); }

  // 2^x: n = round(x), f = x - n in [-1/2, 1/2], degree-7 Taylor polynomial for 2^f (relative
  // error ~1e-8 before rounding), then vscalefps multiplies by 2^n. Inputs below -126 (and -inf)
  // give exactly 0, which the masking of attention relies on.
  static Reg exp2(Reg x) {
    const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-126.0f), _CMP_GE_OQ);
    const Reg n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const Reg f = _mm512_sub_ps(x, n);
    Reg p = _mm512_set1_ps(1.5252733804059840e-05f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.5403530393381609e-04f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558146428443e-03f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291076284772e-03f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504108664821580e-02f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022650695910071e-01f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718055994531e-01f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(live, p, n);
  }

  static __mmask16 tail_mask(int64_t n) {
    return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1);
  }

  // Widens n elements of any input dtype to fp32, times `scale`.
  static void to_float_row(DType dtype, const void* base, int64_t offset, float* dst, int64_t n,
                           float scale) {
    const Reg s = _mm512_set1_ps(scale);
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = tail_mask(n - i);
      Reg x;
      if (dtype == DType::fp32) {
        x = _mm512_maskz_loadu_ps(m, static_cast<const float*>(base) + offset + i);
      } else {
        const __m256i h =
            _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + offset + i);
        x = dtype == DType::fp16
                ? _mm512_cvtph_ps(h)
                : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
      }
      _mm512_mask_storeu_ps(dst + i, m, _mm512_mul_ps(x, s));
    }
  }

  // Narrows n fp32 values (times `scale`) to the output dtype, rounding to nearest even.
  static void from_float_row(DType dtype, const float* src, void* base, int64_t offset, int64_t n,
                             float scale) {
    const Reg s = _mm512_set1_ps(scale);
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = tail_mask(n - i);
      const Reg x = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + i), s);
      if (dtype == DType::fp32) {
        _mm512_mask_storeu_ps(static_cast<float*>(base) + offset + i, m, x);
        continue;
      }
      __m256i h;
      if (dtype == DType::fp16) {
        h = _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      } else {
        const __m512i bits = _mm512_castps_si512(x);
        const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
        const __m512i rounded =
            _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
        h = _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16));
      }
      _mm256_mask_storeu_epi16(static_cast<uint16_t*>(base) + offset + i, m, h);
    }
  }
};

}  // namespace
}  // namespace pfa::kernels::cpu

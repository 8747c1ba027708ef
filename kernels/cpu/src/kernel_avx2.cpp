// AVX2 + FMA fp32 path: 8-lane FMAs, 3x32 micro-tiles (12 accumulators of the 16 registers).
#include "dtype_convert.h"
#include "fp32_tile_kernel.h"

#include <immintrin.h>

namespace pfa::kernels::cpu {
namespace {

struct Avx2Vec {
  using Reg = __m256;
  static constexpr int kWidth = 8;
  static constexpr int kRows = 3;
  static constexpr int kCols = 4;
  static Reg zero() { return _mm256_setzero_ps(); }
  static Reg set1(float f) { return _mm256_set1_ps(f); }
  static Reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, Reg r) { _mm256_storeu_ps(p, r); }
  static Reg fmadd(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static Reg mul(Reg a, Reg b) { return _mm256_mul_ps(a, b); }
  static Reg add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm256_sub_ps(a, b); }
  static Reg max(Reg a, Reg b) { return _mm256_max_ps(a, b); }
  static float reduce_max(Reg r) {
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    x = _mm_max_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
  }
  static float reduce_add(Reg r) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
  }
  // 2^x as in the AVX-512 path; 2^n is built in the exponent bits. Inputs below -126 give 0.
  static Reg exp2(Reg x) {
    const Reg live = _mm256_cmp_ps(x, _mm256_set1_ps(-126.0f), _CMP_GE_OQ);
    const Reg xc = _mm256_max_ps(x, _mm256_set1_ps(-126.0f));
    const Reg n = _mm256_round_ps(xc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const Reg f = _mm256_sub_ps(xc, n);
    Reg p = _mm256_set1_ps(1.5252733804059840e-05f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.5403530393381609e-04f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.3333558146428443e-03f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.6181291076284772e-03f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.5504108664821580e-02f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.4022650695910071e-01f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.9314718055994531e-01f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), live);
  }

  static void to_float_row(DType dtype, const void* base, int64_t offset, float* dst, int64_t n,
                           float scale) {
    const Reg s = _mm256_set1_ps(scale);
    int64_t i = 0;
    if (dtype == DType::fp32) {
      const float* src = static_cast<const float*>(base) + offset;
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_loadu_ps(src + i), s));
      for (; i < n; ++i) dst[i] = src[i] * scale;
      return;
    }
    const uint16_t* src = static_cast<const uint16_t*>(base) + offset;
    for (; i + 8 <= n; i += 8) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
      const Reg x = dtype == DType::fp16
                        ? _mm256_cvtph_ps(h)
                        : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
      _mm256_storeu_ps(dst + i, _mm256_mul_ps(x, s));
    }
    for (; i < n; ++i)
      dst[i] = (dtype == DType::fp16 ? fp16_to_float(src[i]) : bf16_to_float(src[i])) * scale;
  }

  static void from_float_row(DType dtype, const float* src, void* base, int64_t offset, int64_t n,
                             float scale) {
    const Reg s = _mm256_set1_ps(scale);
    int64_t i = 0;
    if (dtype == DType::fp32) {
      float* dst = static_cast<float*>(base) + offset;
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_loadu_ps(src + i), s));
      for (; i < n; ++i) dst[i] = src[i] * scale;
      return;
    }
    uint16_t* dst = static_cast<uint16_t*>(base) + offset;
    if (dtype == DType::fp16) {
      for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(src + i), s),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
      }
      for (; i < n; ++i) dst[i] = float_to_fp16(src[i] * scale);
    } else {
      for (; i < n; ++i) dst[i] = float_to_bf16(src[i] * scale);
    }
  }
};

}  // namespace

const KernelOps kAvx2Ops = {8, 1, sizeof(float), &pack_block_fp32<Avx2Vec>,
                            &run_tile_fp32<Avx2Vec>,
                              &run_decode_fp32<Avx2Vec>};

}  // namespace pfa::kernels::cpu

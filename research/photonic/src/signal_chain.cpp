#include "pfa/photonic/signal_chain.h"

#include "pfa/photonic/counter_rng.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <immintrin.h>

// GCC 12 warns about the undefined pass-through operands inside its own AVX-512 intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace pfa::photonic {

namespace {
constexpr int kMaxWavelengths = 256;  // bound for the stack buffers of one chunk

// encode() for up to 16 wavelengths, contiguous input and a diagonal (or no) pre-distortion, one
// chunk per AVX-512 vector: the same operations in the same order as the portable loop below
// (the crosstalk sum always fused into one multiply-add, where the portable loop's rounding depends
// on how the compiler vectorised it: the last bit can differ). `diag` is the pre-distortion's
// diagonal or null.
__attribute__((target("avx512f,avx512dq,avx512vl,fma")))
void encode_chunks_avx512(const float* raw, int64_t n, int L, const float* diag, const float* gain,
                          float xt, float levels, float lo, float* optical, float* scales) {
  const __mmask16 lanes = static_cast<__mmask16>((1u << L) - 1);
  const __m512 pd = diag != nullptr ? _mm512_maskz_loadu_ps(lanes, diag) : _mm512_setzero_ps();
  const __m512 g = _mm512_maskz_loadu_ps(lanes, gain);
  const __m512 zero = _mm512_setzero_ps(), lo_v = _mm512_set1_ps(lo), one = _mm512_set1_ps(1.0f);
  const __m512 xt_v = _mm512_set1_ps(xt), inv_levels = _mm512_set1_ps(1.0f / levels);
  const int64_t chunks = (n + L - 1) / L;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t left_over = n - c * L;
    const __mmask16 valid =
        left_over >= L ? lanes : static_cast<__mmask16>((1u << left_over) - 1);
    __m512 v = _mm512_maskz_loadu_ps(valid, raw + c * L);
    if (diag != nullptr) v = _mm512_mul_ps(pd, v);
    const float scale = _mm512_reduce_max_ps(_mm512_abs_ps(v));
    scales[c] = scale;
    float* out = optical + c * L;
    if (scale == 0) {
      _mm512_mask_storeu_ps(out, lanes, zero);
      continue;
    }
    const float to_levels = levels / scale;
    __m512 code = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(to_levels)),
                                       _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC);
    code = _mm512_mul_ps(code, inv_levels);
    const __m512 e = _mm512_mul_ps(g, _mm512_min_ps(_mm512_max_ps(code, lo_v), one));
    // Neighbours: e[k - 1] and e[k + 1], zero past either end (lanes >= L of e are zero).
    const __m512 left = _mm512_castsi512_ps(
        _mm512_alignr_epi32(_mm512_castps_si512(e), _mm512_castps_si512(zero), 15));
    const __m512 right = _mm512_castsi512_ps(
        _mm512_alignr_epi32(_mm512_castps_si512(zero), _mm512_castps_si512(e), 1));
    _mm512_mask_storeu_ps(out, lanes, _mm512_fmadd_ps(xt_v, _mm512_add_ps(left, right), e));
  }
}

bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
}

}  // namespace

AdcRange make_adc_range(double full_scale, int bits) {
  AdcRange r;
  const double half_codes = std::ldexp(1.0, bits - 1);
  r.full_scale = static_cast<float>(full_scale);
  r.step = static_cast<float>(full_scale / half_codes);
  r.inv_step = static_cast<float>(half_codes / full_scale);
  r.code_min = static_cast<float>(-half_codes);
  r.code_max = static_cast<float>(half_codes - 1);
  return r;
}

SignalChain::SignalChain(const SimulatedDevice& device, uint64_t noise_stream)
    : state_(device.optical_state()),
      corrections_(device.corrections()),
      lambda_(device.params().wavelengths),
      inv_lambda_(1.0f / static_cast<float>(device.params().wavelengths)),
      sigma_(static_cast<float>(device.noise_sigma())),
      dac_bits_(device.config().dac_bits),
      adc_bits_(device.config().adc_bits),
      seed_(stream_key(device.config().noise_seed, noise_stream)) {
  if (lambda_ > kMaxWavelengths) throw std::runtime_error("too many wavelengths per core");
  auto max_of = [](const std::vector<float>& v) {
    float m = 0;
    for (float x : v) m = std::max(m, std::abs(x));
    return m;
  };
  // The ADC's widest range: the largest product the optics can deliver (all channels at full
  // scale, the strongest gains, crosstalk adding in phase), with 1/8 headroom and room for noise.
  const double leak = 1.0 + 2.0 * state_.crosstalk;
  const double largest = max_of(state_.node_gain) * max_of(state_.gain_a) *
                             max_of(state_.gain_b) * leak * leak + max_of(state_.node_offset);
  physical_full_scale_ = std::max(largest, 1.0) * 1.125 + 4.0 * sigma_;
  auto is_diagonal = [L = lambda_](const std::vector<float>& m) {
    for (size_t i = 0; i < m.size(); ++i) {
      const size_t r = (i / L) % L, c = i % L;
      if (r != c && m[i] != 0.0f) return false;
    }
    return true;
  };
  diagonal_a_ = is_diagonal(corrections_.predistort_a);
  diagonal_b_ = is_diagonal(corrections_.predistort_b);
}

uint64_t SignalChain::noise_key(uint64_t stream) const { return stream_key(seed_, stream); }

// Runs once per operand element (every probability row passes through it), so it is cloned for
// the vector extensions too.
__attribute__((target_clones("avx512f", "avx2", "default")))
void SignalChain::encode(const float* raw, int64_t n, int64_t stride, int lane, Side side,
                         bool nonnegative, float* optical, float* scales) const {
  const int L = lambda_;
  const float* predistort = nullptr;
  bool diagonal = false;  // a diagonal pre-distortion (gains only) costs lambda, not lambda^2
  if (corrections_.active) {
    const auto& m = side == Side::a ? corrections_.predistort_a : corrections_.predistort_b;
    if (!m.empty()) predistort = m.data() + static_cast<size_t>(lane) * L * L;
    diagonal = side == Side::a ? diagonal_a_ : diagonal_b_;
  }
  const float* gain = (side == Side::a ? state_.gain_a.data() : state_.gain_b.data()) +
                      static_cast<size_t>(lane) * L;
  const float xt = state_.crosstalk;
  const int bits = dac_bits_;
  const float levels = nonnegative ? static_cast<float>(std::ldexp(1.0, bits) - 1)
                                   : static_cast<float>(std::max(1.0, std::ldexp(1.0, bits - 1) - 1));
  const float lo = nonnegative ? 0.0f : -1.0f;
  static const bool avx512 = cpu_has_avx512();
  if (avx512 && stride == 1 && L <= 16 && (predistort == nullptr || diagonal)) {
    float diag[16];
    if (predistort != nullptr)
      for (int k = 0; k < L; ++k) diag[k] = predistort[k * L + k];
    encode_chunks_avx512(raw, n, L, predistort != nullptr ? diag : nullptr, gain, xt, levels, lo,
                         optical, scales);
    return;
  }
  float x[kMaxWavelengths], y[kMaxWavelengths], e[kMaxWavelengths];
  const int64_t chunks = (n + L - 1) / L;
  for (int64_t c = 0; c < chunks; ++c) {
    for (int k = 0; k < L; ++k) {
      const int64_t i = c * L + k;
      x[k] = i < n ? raw[i * stride] : 0.0f;
    }
    const float* v = x;
    if (predistort != nullptr && diagonal) {
      for (int k = 0; k < L; ++k) y[k] = predistort[k * L + k] * x[k];
      v = y;
    } else if (predistort != nullptr) {
      for (int r = 0; r < L; ++r) {
        float acc = 0;
        for (int k = 0; k < L; ++k) acc += predistort[r * L + k] * x[k];
        y[r] = acc;
      }
      v = y;
    }
    // Block floating point: one scale per chunk (kept digitally), the DAC sees [-1, 1] or [0, 1].
    float scale = 0;
    for (int k = 0; k < L; ++k) scale = std::max(scale, std::abs(v[k]));
    scales[c] = scale;
    float* out = optical + c * L;
    if (scale == 0) {
      std::fill(out, out + L, 0.0f);
      continue;
    }
    const float to_levels = levels / scale;
    const float inv_levels = 1.0f / levels;
    for (int k = 0; k < L; ++k) {
      const float code = std::nearbyint(v[k] * to_levels) * inv_levels;
      e[k] = gain[k] * std::clamp(code, lo, 1.0f);  // modulator: this channel's power gain
    }
    // Each channel's ring also modulates its neighbours' lines (Lorentzian tail).
    for (int k = 0; k < L; ++k) {
      const float left = k > 0 ? e[k - 1] : 0.0f;
      const float right = k + 1 < L ? e[k + 1] : 0.0f;
      out[k] = e[k] + xt * (left + right);
    }
  }
}

float SignalChain::detect(const float* a, const float* b, int w, int h, uint64_t key, uint32_t n,
                          uint32_t chunk, uint32_t stride, const AdcRange& adc,
                          int64_t& clipped) const {
  float y = analog(a, b, w, h);
  if (sigma_ > 0) y += sigma_ * detector_noise(key, n, chunk, stride);
  const int node = w * state_.height + h;
  return (quantize(adc, y, clipped) - corrections_.output_offset[node]) *
         corrections_.output_gain[node];
}

}  // namespace pfa::photonic

// The signal chain of one product on the crossbar, element by element:
//   digital operand -> (calibration pre-distortion) -> block scale per lambda-chunk -> DAC
//   -> modulator (channel power gain incl. ring detuning and extinction ratio) -> WDM crosstalk
//   -> node: sum over lambda channels of a_k b_k, times node gain (responsivity, TIA, phase)
//   -> + detector offset + noise (shot, thermal, RIN; dark current) -> ADC (full scale, clips)
//   -> digital: minus offset, times gain correction, times block scales, accumulated in fp32.
// Values are in full-scale units: a detection of lambda terms all at +1 reads 1.0.
#pragma once

#include "device.h"

#include <cmath>
#include <cstdint>

namespace pfa::photonic {

enum class Side { a, b };  // A lanes (rows of the left operand), B lanes (rows of the right one)

// One ADC's transfer for one product: signed, 2^bits codes over [-full_scale, full_scale).
struct AdcRange {
  float full_scale = 1;
  float step = 1;
  float inv_step = 1;
  float code_min = -1, code_max = 1;
};
AdcRange make_adc_range(double full_scale, int bits);

// The ADC's output for an analog value y (full-scale units), counting a clip.
inline float quantize(const AdcRange& adc, float y, int64_t& clipped) {
  float code = std::nearbyint(y * adc.inv_step);
  if (code > adc.code_max) {
    code = adc.code_max;
    ++clipped;
  } else if (code < adc.code_min) {
    code = adc.code_min;
    ++clipped;
  }
  return code * adc.step;
}

class SignalChain {
 public:
  SignalChain(const SimulatedDevice& device, uint64_t noise_stream);

  int wavelengths() const { return lambda_; }
  int width() const { return state_.width; }
  int height() const { return state_.height; }
  int64_t chunks(int64_t n) const { return (n + lambda_ - 1) / lambda_; }
  const OpticalState& state() const { return state_; }
  const Corrections& corrections() const { return corrections_; }
  float sigma() const { return sigma_; }
  int dac_bits() const { return dac_bits_; }
  int adc_bits() const { return adc_bits_; }
  // Largest value a detection can physically reach (all channels at full scale, worst gains).
  double physical_full_scale() const { return physical_full_scale_; }

  // Encodes n values (element stride `stride`) for lane `lane` of `side`: writes chunks(n) *
  // lambda optical amplitudes to `optical` and one block scale per chunk to `scales`.
  // `nonnegative` operands (probabilities) use an unsigned DAC range.
  void encode(const float* raw, int64_t n, int64_t stride, int lane, Side side, bool nonnegative,
              float* optical, float* scales) const;

  // The noise-free analog detector value for one chunk pair at node (w, h).
  float analog(const float* a, const float* b, int w, int h) const {
    float dot = 0;
    for (int k = 0; k < lambda_; ++k) dot += a[k] * b[k];
    const int node = w * state_.height + h;
    return state_.node_gain[node] * dot * inv_lambda_ + state_.node_offset[node];
  }

  // One detection: analog value + noise -> ADC -> digital correction. Returns the estimate of
  // sum_k a_k b_k in DAC units (before block scales). Noise sample = detector_noise(key, n,
  // chunk, stride): detection n of chunk `chunk` in a product with `stride` chunks.
  float detect(const float* a, const float* b, int w, int h, uint64_t key, uint32_t n,
               uint32_t chunk, uint32_t stride, const AdcRange& adc, int64_t& clipped) const;

  // The noise key of one stream (e.g. one query row) of this product.
  uint64_t noise_key(uint64_t stream) const;

 private:
  OpticalState state_;
  Corrections corrections_;
  int lambda_ = 1;
  float inv_lambda_ = 1;
  float sigma_ = 0;
  int dac_bits_ = 8, adc_bits_ = 8;
  double physical_full_scale_ = 1;
  uint64_t seed_ = 0;
  bool diagonal_a_ = true, diagonal_b_ = true;  // pre-distortion matrices with no off-diagonal
};

}  // namespace pfa::photonic

// Run-time settings of a simulated device: resolution, which impairments are on, seeds, drift.
#pragma once

#include <cstdint>

namespace pfa::photonic {

struct SimConfig {
  int dac_bits = 8;  // operand DACs (signed operands use 2^(b-1)-1 levels, probabilities 2^b-1)
  int adc_bits = 8;  // detector ADCs

  bool noise = true;      // shot, thermal and RIN noise at the detectors
  bool variation = true;  // fabrication variation (gains, ring offsets, phases, offsets)
  bool crosstalk = true;  // adjacent WDM channel leakage (Lorentzian)

  // Received optical power relative to the laser budget (sensitivity x 2^adc_bits), dB. Lowering
  // it saves laser energy and costs SNR.
  double optical_power_offset_db = 0;
  // ADC full scale = max(this many RMS of the detected signal, the largest value in the pilot
  // sample); 0 = the physical full range (never clips).
  double adc_range_sigmas = 4.0;

  uint64_t device_seed = 1;  // draws the fabrication variation: one seed, one chip
  uint64_t noise_seed = 1;   // draws the detector noise: same seed and call, same output

  bool drift = false;        // temperature drifts over simulated time
  bool control_loop = true;  // temperature set-point loop (holds drift to its residual)
};

}  // namespace pfa::photonic

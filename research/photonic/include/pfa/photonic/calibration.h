// Calibration of a simulated device, as a lab would do it on a real chip:
//  1. resonance lock: sweep each ring's heater, find its transmission peak from the monitor
//     detector, set the heater there (reports wavelength error before/after, pm);
//  2. detector offsets from dark (all-zero) inputs;
//  3. Hadamard test patterns on both operands: the bilinear transfer M of every node
//     (y = x^T M w) from N^2 pattern pairs; its diagonal gives per-channel and per-node gains
//     (power uniformity, %), its off-diagonal the adjacent-channel crosstalk (dB);
//  4. corrections: gains and the crosstalk inverse are pre-distorted digitally into the operands,
//     node gains and offsets corrected at the ADC output.
// The data serialises to JSON so the execution store can keep it with the device fingerprint.
#pragma once

#include "device.h"

#include <cstdint>
#include <string>
#include <vector>

namespace pfa::photonic {

struct CalibrationOptions {
  int repeats = 16;           // averaged detections per Hadamard pattern pair
  int monitor_adc_bits = 16;  // resolution of the calibration (monitor) read-out
  double lock_step_pm = 1.0;  // heater sweep step
  uint64_t seed = 0x5eed;     // noise of the calibration measurements
  bool measure_error = true;  // probe attention before and after (same inputs)
};

struct CalibrationReport {
  double wavelength_error_pm_before = 0;  // RMS ring resonance error
  double wavelength_error_pm_after = 0;
  double power_uniformity_pct = 0;     // std/mean of measured channel power gains, before
  double residual_uniformity_pct = 0;  // the same, re-measured with corrections on
  double crosstalk_db = 0;             // estimated adjacent-channel crosstalk
  double crosstalk_db_design = 0;      // Lorentzian at the channel spacing, for comparison
  double rel_error_before = -1;        // probe attention relative error; -1 = not measured
  double rel_error_after = -1;
  int64_t cycles = 0;                  // crossbar cycles the pattern measurements took
  double heater_power_w = 0;           // tuning power after the lock (one core)
};

struct CalibrationData {
  std::string profile;
  uint64_t device_seed = 0;
  int width = 0, height = 0, wavelengths = 0;
  double time_s = 0;                 // simulated time of calibration
  double temperature_offset_k = 0;   // temperature (vs set-point) at calibration
  std::vector<double> ring_tuning_pm;
  Corrections corrections;
  CalibrationReport report;
};

// Calibrates `device` and installs the result (heater tuning and corrections).
CalibrationData calibrate(SimulatedDevice& device, const CalibrationOptions& options = {});

// Installs stored calibration data; throws std::runtime_error when it belongs to another profile,
// geometry or device seed.
void apply_calibration(SimulatedDevice& device, const CalibrationData& data);

std::string calibration_to_json(const CalibrationData& data);
CalibrationData calibration_from_json(const std::string& json_text);
// A one-line summary: "wavelength error 18.2 -> 0.6 pm, uniformity 3.4 %, crosstalk -17.1 dB, ..."
std::string summary(const CalibrationReport& r);

// Relative error of attention through the device on fixed random inputs (seq 64, head_dim 64,
// uniform in [-1, 1) from `seed`) against exact attention: the before/after probe.
double probe_attention_error(const SimulatedDevice& device, uint64_t seed);

}  // namespace pfa::photonic

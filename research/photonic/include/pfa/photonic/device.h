// One simulated photonic tensor core chip: its fabrication variation (drawn once from the device
// seed), its temperature over simulated time, the heater settings of its rings and the digital
// corrections a calibration installed. The signal chain reads an OpticalState snapshot from it.
#pragma once

#include "cost_model.h"
#include "device_params.h"
#include "receiver_noise.h"
#include "sim_config.h"

#include <cstdint>
#include <vector>

namespace pfa::photonic {

// The analog behaviour of the device at one instant, as the signal chain sees it.
struct OpticalState {
  int width = 0, height = 0, wavelengths = 0;
  std::vector<float> gain_a;       // [W][lambda] power gain of each A-lane channel
  std::vector<float> gain_b;       // [H][lambda] power gain of each B-lane channel
  std::vector<float> node_gain;    // [W][H] responsivity x TIA x cos(node phase error)
  std::vector<float> node_offset;  // [W][H] detector offset, in full-scale units
  float crosstalk = 0;             // power leaked into each adjacent channel
};

// Digital corrections applied around the optics (installed by calibration; identity otherwise).
struct Corrections {
  bool active = false;
  int width = 0, height = 0, wavelengths = 0;
  std::vector<float> predistort_a;  // [W][lambda][lambda]: x' = P x before the A-lane DACs
  std::vector<float> predistort_b;  // [H][lambda][lambda]: y' = P y before the B-lane DACs
  std::vector<float> output_gain;   // [W][H]: value = (adc - offset) * gain
  std::vector<float> output_offset; // [W][H]
  static Corrections identity(int width, int height, int wavelengths);
};

class SimulatedDevice {
 public:
  SimulatedDevice(DeviceParams params, SimConfig config);

  const DeviceParams& params() const { return params_; }
  const SimConfig& config() const { return config_; }
  // Changes resolution, seeds or impairments; fabrication variation is redrawn only when the
  // device seed or the variation switch changes.
  void set_config(const SimConfig& config);
  CostConfig cost_config() const;

  // Simulated time, seconds since the device was made, and the temperature it brings.
  double time_s() const { return time_s_; }
  void advance_time(double seconds);
  // Temperature relative to the set-point, K: the loop residual with control on, the ambient drift
  // (bounded) without; 0 while drift is off.
  double temperature_offset_k() const;

  // Rings: one per lane and wavelength, A lanes first ([W + H][lambda]).
  int ring_count() const { return (params_.core_width + params_.core_height) * params_.wavelengths; }
  // Resonance error of each ring now, pm: fabrication offset - heater tuning + thermal shift.
  double ring_detuning_pm(int ring) const;
  const std::vector<double>& ring_tuning_pm() const { return tuning_pm_; }
  void set_ring_tuning(std::vector<double> tuning_pm);
  // Heater power the current tuning costs, watts (all rings of one core).
  double tuning_power_w() const;

  OpticalState optical_state() const;

  const Corrections& corrections() const { return corrections_; }
  void set_corrections(Corrections c, double calibrated_at_temperature_k);
  void clear_corrections();
  bool calibrated() const { return corrections_.active; }
  // Ring shift since calibration, pm; calibration is stale past params().stale_threshold_pm.
  double drift_since_calibration_pm() const;
  bool calibration_stale() const;

  // Receiver noise at the configured power, and its standard deviation relative to full scale
  // (0 when noise is off).
  ReceiverNoise receiver() const;
  double noise_sigma() const;

 private:
  void draw_variation();

  DeviceParams params_;
  SimConfig config_;
  double time_s_ = 0;
  // Fabrication variation.
  std::vector<double> ring_offset_pm_;     // [rings]
  std::vector<double> channel_power_;      // [rings] relative power of each lane's channel
  std::vector<double> node_responsivity_;  // [W][H]
  std::vector<double> node_phase_rad_;     // [W][H]
  std::vector<double> node_offset_;        // [W][H]
  std::vector<double> tuning_pm_;          // [rings] heater settings
  Corrections corrections_;
  double calibration_temperature_k_ = 0;
};

}  // namespace pfa::photonic

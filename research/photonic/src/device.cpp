#include "pfa/photonic/device.h"

#include "pfa/photonic/counter_rng.h"
#include "pfa/photonic/ring_crosstalk.h"

#include <cmath>
#include <numbers>
#include <stdexcept>

namespace pfa::photonic {

namespace {

// Streams of the device seed, one per kind of variation.
enum VariationStream : uint64_t {
  kRingOffset = 1,
  kChannelPower = 2,
  kNodeResponsivity = 3,
  kNodePhase = 4,
  kNodeOffset = 5,
};

constexpr double kLoopHuntPeriod_s = 7.0;  // the control loop's residual oscillates slowly

}  // namespace

Corrections Corrections::identity(int width, int height, int wavelengths) {
  Corrections c;
  c.width = width;
  c.height = height;
  c.wavelengths = wavelengths;
  // Without calibration the read-out assumes nominal gains: full scale = lambda terms at 1.
  c.output_gain.assign(static_cast<size_t>(width) * height, static_cast<float>(wavelengths));
  c.output_offset.assign(static_cast<size_t>(width) * height, 0.0f);
  return c;
}

SimulatedDevice::SimulatedDevice(DeviceParams params, SimConfig config)
    : params_(std::move(params)), config_(config) {
  if (config_.dac_bits < 1 || config_.dac_bits > 24 || config_.adc_bits < 1 ||
      config_.adc_bits > 24) {
    throw std::runtime_error("photonic converter resolution must be 1..24 bits");
  }
  draw_variation();
}

void SimulatedDevice::set_config(const SimConfig& config) {
  const bool redraw =
      config.device_seed != config_.device_seed || config.variation != config_.variation;
  if (config.dac_bits < 1 || config.dac_bits > 24 || config.adc_bits < 1 || config.adc_bits > 24) {
    throw std::runtime_error("photonic converter resolution must be 1..24 bits");
  }
  config_ = config;
  if (redraw) draw_variation();
}

void SimulatedDevice::draw_variation() {
  const int rings = ring_count();
  const int nodes = params_.core_width * params_.core_height;
  ring_offset_pm_.assign(rings, 0.0);
  channel_power_.assign(rings, 1.0);
  node_responsivity_.assign(nodes, 1.0);
  node_phase_rad_.assign(nodes, 0.0);
  node_offset_.assign(nodes, 0.0);
  tuning_pm_.assign(rings, 0.0);
  clear_corrections();
  if (!config_.variation) return;
  const uint64_t seed = config_.device_seed;
  const double deg = std::numbers::pi / 180.0;
  for (int r = 0; r < rings; ++r) {
    ring_offset_pm_[r] = params_.wavelength_offset_sigma_pm * gaussian(stream_key(seed, kRingOffset), r);
    channel_power_[r] = std::max(
        0.05, 1.0 + 0.01 * params_.channel_power_sigma_pct * gaussian(stream_key(seed, kChannelPower), r));
  }
  for (int n = 0; n < nodes; ++n) {
    node_responsivity_[n] = std::max(
        0.05, 1.0 + 0.01 * params_.detector_gain_sigma_pct *
                        gaussian(stream_key(seed, kNodeResponsivity), n));
    node_phase_rad_[n] = params_.node_phase_sigma_deg * deg * gaussian(stream_key(seed, kNodePhase), n);
    node_offset_[n] = params_.detector_offset_sigma_fs * gaussian(stream_key(seed, kNodeOffset), n);
  }
}

CostConfig SimulatedDevice::cost_config() const {
  CostConfig c;
  c.dac_bits = config_.dac_bits;
  c.adc_bits = config_.adc_bits;
  c.optical_power_offset_db = config_.optical_power_offset_db;
  if (calibrated()) {
    double sum = 0;
    for (double t : tuning_pm_) sum += std::abs(t);
    c.mean_tuning_pm = sum / static_cast<double>(tuning_pm_.size());
  }
  return c;
}

void SimulatedDevice::advance_time(double seconds) {
  if (seconds > 0) time_s_ += seconds;
}

double SimulatedDevice::temperature_offset_k() const {
  if (!config_.drift) return 0.0;
  if (config_.control_loop) {
    return params_.control_loop_residual_k *
           std::sin(2.0 * std::numbers::pi * time_s_ / kLoopHuntPeriod_s);
  }
  return std::min(params_.ambient_drift_k_per_s * time_s_, params_.ambient_max_excursion_k);
}

double SimulatedDevice::ring_detuning_pm(int ring) const {
  return ring_offset_pm_[ring] - tuning_pm_[ring] +
         params_.ring_shift_pm_per_k() * temperature_offset_k();
}

void SimulatedDevice::set_ring_tuning(std::vector<double> tuning_pm) {
  if (static_cast<int>(tuning_pm.size()) != ring_count()) {
    throw std::runtime_error("ring tuning has the wrong number of rings for this device");
  }
  tuning_pm_ = std::move(tuning_pm);
}

double SimulatedDevice::tuning_power_w() const {
  double pm = 0;
  for (double t : tuning_pm_) pm += std::abs(t);
  return pm * 1e-3 * params_.heater_mw_per_nm * 1e-3;
}

OpticalState SimulatedDevice::optical_state() const {
  const int W = params_.core_width, H = params_.core_height, L = params_.wavelengths;
  OpticalState s;
  s.width = W;
  s.height = H;
  s.wavelengths = L;
  // Finite extinction ratio: the "off" level leaks, so only this fraction of the power swings.
  const double swing = 1.0 - 1.0 / from_db(params_.modulator_extinction_ratio_db);
  auto channel_gain = [&](int ring) {
    const double detuned = lorentzian(ring_detuning_pm(ring) * 1e-3, params_.ring_fwhm_nm);
    return static_cast<float>(channel_power_[ring] * detuned * swing);
  };
  s.gain_a.resize(static_cast<size_t>(W) * L);
  s.gain_b.resize(static_cast<size_t>(H) * L);
  for (int r = 0; r < W * L; ++r) s.gain_a[r] = channel_gain(r);
  for (int r = 0; r < H * L; ++r) s.gain_b[r] = channel_gain(W * L + r);
  const double dT = temperature_offset_k();
  s.node_gain.resize(static_cast<size_t>(W) * H);
  s.node_offset.resize(static_cast<size_t>(W) * H);
  for (int n = 0; n < W * H; ++n) {
    const double phase = node_phase_rad_[n] + params_.phase_drift_rad_per_k() * dT;
    s.node_gain[n] = static_cast<float>(node_responsivity_[n] * std::cos(phase));
    s.node_offset[n] = static_cast<float>(node_offset_[n]);
  }
  s.crosstalk = config_.crosstalk
                    ? static_cast<float>(adjacent_crosstalk(params_.channel_spacing_nm,
                                                            params_.ring_fwhm_nm))
                    : 0.0f;
  return s;
}

void SimulatedDevice::set_corrections(Corrections c, double calibrated_at_temperature_k) {
  c.active = true;
  corrections_ = std::move(c);
  calibration_temperature_k_ = calibrated_at_temperature_k;
}

void SimulatedDevice::clear_corrections() {
  corrections_ = Corrections::identity(params_.core_width, params_.core_height, params_.wavelengths);
  // The uncalibrated read-out still knows the design: both operands lose the extinction-ratio
  // swing, so the nominal gain divides it out.
  const double swing = 1.0 - 1.0 / from_db(params_.modulator_extinction_ratio_db);
  for (float& g : corrections_.output_gain) g = static_cast<float>(g / (swing * swing));
  calibration_temperature_k_ = 0;
}

double SimulatedDevice::drift_since_calibration_pm() const {
  return std::abs(temperature_offset_k() - calibration_temperature_k_) *
         params_.ring_shift_pm_per_k();
}

bool SimulatedDevice::calibration_stale() const {
  return calibrated() && drift_since_calibration_pm() > params_.stale_threshold_pm;
}

ReceiverNoise SimulatedDevice::receiver() const {
  return receiver_noise(receiver_inputs(params_, received_power_dbm(params_, cost_config())));
}

double SimulatedDevice::noise_sigma() const {
  return config_.noise ? receiver().relative_sigma() : 0.0;
}

}  // namespace pfa::photonic

// How a simulated device is configured from the environment, shared by the photonic_sim plugin
// and the tools that calibrate it, so both build the same chip:
//   PFA_PHOTONIC_PROFILE      generic (default) | envise_like | path/to/profile.json
//   PFA_PHOTONIC_BITS         DAC and ADC resolution, 1..24 (default 8)
//   PFA_PHOTONIC_DAC_BITS, PFA_PHOTONIC_ADC_BITS   override one side
//   PFA_PHOTONIC_SEED         noise seed (default 1); PFA_PHOTONIC_DEVICE_SEED: which chip (1)
//   PFA_PHOTONIC_DRIFT        off (default) | loop (drift, temperature loop on) | free (no loop)
//   PFA_PHOTONIC_TIME_SCALE   simulated seconds per wall-clock second (default 1)
//   PFA_PHOTONIC_CALIBRATION  auto (default: this chip's record from `pfa-tune calibrate` in the
//                             state folder, else calibrate at start) | off | path/to/record.json
//   PFA_PHOTONIC_SAMPLE_ROWS  rows checked against exact attention per call (default 16)
//   PFA_PHOTONIC_LOG          append one JSON line per call to this file (default: none)
#pragma once

#include "sim_config.h"

#include <cstdint>
#include <string>

namespace pfa::photonic {

struct Settings {
  std::string profile = "generic";
  SimConfig config;
  double time_scale = 1.0;
  std::string calibration = "auto";
  int sample_rows = 16;
  std::string log_path;
};

// Reads the variables above; throws std::runtime_error naming a bad value.
Settings settings_from_env();

// Where `pfa-tune calibrate` leaves a calibration record for the plugin: a file named
// calibration_file_name(profile, device seed) next to the store, by default in
// default_state_directory() ($XDG_STATE_HOME/pfa when that is absolute, else
// $HOME/.local/state/pfa: the folder of the default execution store). Empty when neither is set.
std::string default_state_directory();
// "photonic_sim-<profile>-dev<seed>.calibration.json"; characters outside [A-Za-z0-9._-] in the
// profile name become '_'.
std::string calibration_file_name(const std::string& profile_name, uint64_t device_seed);

}  // namespace pfa::photonic

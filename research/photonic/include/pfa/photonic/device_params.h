// Device parameters of a simulated photonic tensor core, loaded from a profile file. Every value
// carries its unit in its name and a source note in the profile (profiles/*.json), so a modelled
// cost can be traced back to a published figure or a labelled assumption.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace pfa::photonic {

struct DeviceParams {
  std::string name;   // profile name, e.g. "generic"
  std::string label;  // what the profile approximates and from which public figures

  // Geometry: a W x H crossbar, each cross-point a dot product of `wavelengths` terms.
  int core_width = 12;   // lanes of operand A per cycle (W)
  int core_height = 12;  // lanes of operand B per cycle (H)
  int wavelengths = 12;  // WDM channels = terms summed optically per detection
  double clock_hz = 5e9;
  int cores = 8;

  // Input side: modulators and WDM routing.
  double modulator_energy_fj_per_bit = 450;
  double modulator_static_mw = 0;
  double modulator_insertion_loss_db = 1.2;
  double modulator_extinction_ratio_db = 20;
  double router_static_mw = 0.275;
  double router_insertion_loss_db = 0.93;
  double y_branch_insertion_loss_db = 0.1;
  double phase_shifter_insertion_loss_db = 0.33;
  double coupler_insertion_loss_db = 0.33;

  // Output side.
  double photodetector_mw = 1.1;
  double photodetector_sensitivity_dbm = -25;
  double tia_mw = 3;
  double laser_wall_plug_efficiency = 0.2;

  // Converters: reference designs, scaled with resolution (see cost_model.h).
  double adc_reference_pj = 1.48;
  int adc_reference_bits = 8;
  double dac_reference_pj = 3.57;
  int dac_reference_bits = 8;

  // Electronics beside the optics.
  double sram_pj_per_16bit = 0.92;
  double dram_pj_per_16bit = 62.4;
  double digital_accumulate_pj = 0.3;
  double softmax_pj_per_element = 5.0;
  double softmax_elements_per_s = 2.56e11;
  int pipeline_latency_cycles = 8;

  // Receiver physics.
  double responsivity_a_per_w = 1.0;
  double load_resistance_ohm = 1000;
  double receiver_temperature_k = 300;
  double dark_current_na = 0.1;
  double rin_db_per_hz = -150;
  double receiver_bandwidth_fraction = 0.5;  // receiver bandwidth / clock

  // Rings, WDM grid and thermal behaviour.
  double ring_fwhm_nm = 0.228;
  double channel_spacing_nm = 0.8;
  double center_wavelength_nm = 1550;
  double ring_thermo_optic_per_k = 1.86e-4;  // dn/dT
  double ring_group_index = 4.2;
  double phase_shifter_length_um = 100;
  double heater_mw_per_nm = 4.0;

  // Fabrication variation (drawn per device seed).
  double wavelength_offset_sigma_pm = 30;
  double channel_power_sigma_pct = 3;
  double node_phase_sigma_deg = 2;
  double detector_gain_sigma_pct = 2;
  double detector_offset_sigma_fs = 0.002;  // in units of the detector's full-scale signal

  // Temperature drift and control.
  double ambient_drift_k_per_s = 0.02;
  double ambient_max_excursion_k = 2.0;
  double control_loop_residual_k = 0.005;
  double stale_threshold_pm = 10;

  // The MZI-mesh alternative (documented, not used for attention; see mzi_mesh.h).
  double mzi_settle_s = 2e-6;

  // Unit and source note of every value, by parameter name, as read from the profile.
  struct Note {
    std::string unit, source;
  };
  std::map<std::string, Note> notes;

  // Derived quantities.
  double receiver_bandwidth_hz() const { return receiver_bandwidth_fraction * clock_hz; }
  // Ring resonance shift with temperature: lambda * (dn/dT) / n_g, in pm/K.
  double ring_shift_pm_per_k() const {
    return center_wavelength_nm * 1e3 * ring_thermo_optic_per_k / ring_group_index;
  }
  // Thermal phase drift of one node's phase shifter: 2 pi (dn/dT) L / lambda, in rad/K.
  double phase_drift_rad_per_k() const;
};

// Names of the profiles built into the library (the files in research/photonic/profiles).
std::vector<std::string> builtin_profile_names();

// Loads a profile: `name_or_path` is a built-in name ("generic", "envise_like"), a name found as
// <dir>/<name>.json in $PFA_PHOTONIC_PROFILE_DIR, or a path to a .json file. Throws
// std::runtime_error naming the problem (unknown profile, missing or unknown parameter).
DeviceParams load_profile(const std::string& name_or_path);

// Parses profile text (the JSON format of profiles/*.json).
DeviceParams parse_profile(const std::string& json_text);

}  // namespace pfa::photonic

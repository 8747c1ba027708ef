#include "pfa/photonic/device_params.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <variant>

namespace pfa::photonic {

namespace detail {
extern const std::pair<std::string_view, std::string_view> kBuiltinProfiles[];
extern const int kBuiltinProfileCount;
}  // namespace detail

namespace {

using Field = std::variant<double DeviceParams::*, int DeviceParams::*>;

// Every parameter a profile must give, by its name in the file.
const std::pair<const char*, Field> kFields[] = {
    {"core_width", &DeviceParams::core_width},
    {"core_height", &DeviceParams::core_height},
    {"wavelengths", &DeviceParams::wavelengths},
    {"clock_hz", &DeviceParams::clock_hz},
    {"cores", &DeviceParams::cores},
    {"modulator_energy_fj_per_bit", &DeviceParams::modulator_energy_fj_per_bit},
    {"modulator_static_mw", &DeviceParams::modulator_static_mw},
    {"modulator_insertion_loss_db", &DeviceParams::modulator_insertion_loss_db},
    {"modulator_extinction_ratio_db", &DeviceParams::modulator_extinction_ratio_db},
    {"router_static_mw", &DeviceParams::router_static_mw},
    {"router_insertion_loss_db", &DeviceParams::router_insertion_loss_db},
    {"y_branch_insertion_loss_db", &DeviceParams::y_branch_insertion_loss_db},
    {"phase_shifter_insertion_loss_db", &DeviceParams::phase_shifter_insertion_loss_db},
    {"coupler_insertion_loss_db", &DeviceParams::coupler_insertion_loss_db},
    {"photodetector_mw", &DeviceParams::photodetector_mw},
    {"photodetector_sensitivity_dbm", &DeviceParams::photodetector_sensitivity_dbm},
    {"tia_mw", &DeviceParams::tia_mw},
    {"laser_wall_plug_efficiency", &DeviceParams::laser_wall_plug_efficiency},
    {"adc_reference_pj", &DeviceParams::adc_reference_pj},
    {"adc_reference_bits", &DeviceParams::adc_reference_bits},
    {"dac_reference_pj", &DeviceParams::dac_reference_pj},
    {"dac_reference_bits", &DeviceParams::dac_reference_bits},
    {"sram_pj_per_16bit", &DeviceParams::sram_pj_per_16bit},
    {"dram_pj_per_16bit", &DeviceParams::dram_pj_per_16bit},
    {"digital_accumulate_pj", &DeviceParams::digital_accumulate_pj},
    {"softmax_pj_per_element", &DeviceParams::softmax_pj_per_element},
    {"softmax_elements_per_s", &DeviceParams::softmax_elements_per_s},
    {"pipeline_latency_cycles", &DeviceParams::pipeline_latency_cycles},
    {"responsivity_a_per_w", &DeviceParams::responsivity_a_per_w},
    {"load_resistance_ohm", &DeviceParams::load_resistance_ohm},
    {"receiver_temperature_k", &DeviceParams::receiver_temperature_k},
    {"dark_current_na", &DeviceParams::dark_current_na},
    {"rin_db_per_hz", &DeviceParams::rin_db_per_hz},
    {"receiver_bandwidth_fraction", &DeviceParams::receiver_bandwidth_fraction},
    {"ring_fwhm_nm", &DeviceParams::ring_fwhm_nm},
    {"channel_spacing_nm", &DeviceParams::channel_spacing_nm},
    {"center_wavelength_nm", &DeviceParams::center_wavelength_nm},
    {"ring_thermo_optic_per_k", &DeviceParams::ring_thermo_optic_per_k},
    {"ring_group_index", &DeviceParams::ring_group_index},
    {"phase_shifter_length_um", &DeviceParams::phase_shifter_length_um},
    {"heater_mw_per_nm", &DeviceParams::heater_mw_per_nm},
    {"wavelength_offset_sigma_pm", &DeviceParams::wavelength_offset_sigma_pm},
    {"channel_power_sigma_pct", &DeviceParams::channel_power_sigma_pct},
    {"node_phase_sigma_deg", &DeviceParams::node_phase_sigma_deg},
    {"detector_gain_sigma_pct", &DeviceParams::detector_gain_sigma_pct},
    {"detector_offset_sigma_fs", &DeviceParams::detector_offset_sigma_fs},
    {"ambient_drift_k_per_s", &DeviceParams::ambient_drift_k_per_s},
    {"ambient_max_excursion_k", &DeviceParams::ambient_max_excursion_k},
    {"control_loop_residual_k", &DeviceParams::control_loop_residual_k},
    {"stale_threshold_pm", &DeviceParams::stale_threshold_pm},
    {"mzi_settle_s", &DeviceParams::mzi_settle_s},
};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read photonic profile " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

double DeviceParams::phase_drift_rad_per_k() const {
  return 2.0 * std::numbers::pi * ring_thermo_optic_per_k * phase_shifter_length_um * 1e-6 /
         (center_wavelength_nm * 1e-9);
}

DeviceParams parse_profile(const std::string& json_text) {
  const nlohmann::json doc = nlohmann::json::parse(json_text);
  DeviceParams p;
  p.name = doc.at("name").get<std::string>();
  p.label = doc.value("label", std::string());
  const auto& params = doc.at("parameters");
  for (const auto& [name, field] : kFields) {
    if (!params.contains(name)) {
      throw std::runtime_error("photonic profile '" + p.name + "' lacks parameter '" + name + "'");
    }
    const auto& entry = params.at(name);
    const double value = entry.at("value").get<double>();
    if (!std::isfinite(value)) {
      throw std::runtime_error("photonic profile '" + p.name + "': '" + name + "' is not finite");
    }
    if (auto* d = std::get_if<double DeviceParams::*>(&field)) {
      p.*(*d) = value;
    } else {
      p.*std::get<int DeviceParams::*>(field) = static_cast<int>(std::lround(value));
    }
    p.notes[name] = {entry.value("unit", std::string()), entry.value("source", std::string())};
  }
  for (const auto& item : params.items()) {
    if (!p.notes.contains(item.key())) {
      throw std::runtime_error("photonic profile '" + p.name + "' has unknown parameter '" +
                               item.key() + "'");
    }
  }
  if (p.core_width < 1 || p.core_height < 1 || p.wavelengths < 1 || p.cores < 1 ||
      p.clock_hz <= 0 || p.laser_wall_plug_efficiency <= 0) {
    throw std::runtime_error("photonic profile '" + p.name + "': geometry, clock and laser "
                             "efficiency must be positive");
  }
  return p;
}

std::vector<std::string> builtin_profile_names() {
  std::vector<std::string> names;
  for (int i = 0; i < detail::kBuiltinProfileCount; ++i) {
    names.emplace_back(detail::kBuiltinProfiles[i].first);
  }
  return names;
}

DeviceParams load_profile(const std::string& name_or_path) {
  namespace fs = std::filesystem;
  if (name_or_path.ends_with(".json")) return parse_profile(read_file(name_or_path));
  if (const char* dir = std::getenv("PFA_PHOTONIC_PROFILE_DIR"); dir != nullptr && *dir) {
    const fs::path candidate = fs::path(dir) / (name_or_path + ".json");
    if (fs::exists(candidate)) return parse_profile(read_file(candidate));
  }
  for (int i = 0; i < detail::kBuiltinProfileCount; ++i) {
    if (detail::kBuiltinProfiles[i].first == name_or_path) {
      return parse_profile(std::string(detail::kBuiltinProfiles[i].second));
    }
  }
  std::string known;
  for (const auto& n : builtin_profile_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::runtime_error("unknown photonic profile '" + name_or_path + "' (built in: " + known +
                           "; or give a path to a .json profile)");
}

}  // namespace pfa::photonic

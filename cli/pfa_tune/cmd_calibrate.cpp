// pfa-tune calibrate PLUGIN: calibrates a backend's device and keeps the calibration. Only
// photonic_sim has one today: the simulated chip (profile and device seed, the rest from the
// PFA_PHOTONIC_* variables the plugin reads) runs the lab procedure of research/photonic
// calibration.h — ring resonance lock, dark offsets, Hadamard patterns for channel gains and
// crosstalk — and the attention error is measured before and after on the same probe inputs.
//
// The record goes to two places: the store (a row of the models table, kind
// "calibration:photonic_sim:<profile>:<device seed>", never active: the newest of its kind is the
// current one), and a JSON file next to the store that the plugin reads at create without linking
// the store (by itself from the default state folder, or through PFA_PHOTONIC_CALIBRATION).
#include "context.h"

#include <pfa/error.h>
#include <pfa/store/store.h>

#ifdef PFA_TUNE_HAS_PHOTONIC
#include <pfa/photonic/calibration.h>
#include <pfa/photonic/device.h>
#include <pfa/photonic/settings.h>
#endif

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <unistd.h>

namespace pfa::tune {

namespace {

struct CalibrateOptions {
  std::string plugin;
  std::string profile;       // empty: PFA_PHOTONIC_PROFILE or generic
  int64_t device_seed = -1;  // < 0: PFA_PHOTONIC_DEVICE_SEED or 1
};

#ifdef PFA_TUNE_HAS_PHOTONIC
namespace ph = pfa::photonic;

// Writes `text` to `path` through a temporary file and a rename: a reader never sees half a record.
void write_atomically(const std::filesystem::path& path, const std::string& text) {
  const auto tmp = path.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      throw Error(ErrorCode::store, fmt::format("cannot write the calibration file {}", tmp));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw Error(ErrorCode::store,
                fmt::format("cannot write the calibration file {}: {}", path.string(), ec.message()));
  }
}

void calibrate_photonic(const Context& context, const CalibrateOptions& o) {
  ph::Settings settings;
  std::unique_ptr<ph::SimulatedDevice> device;
  try {
    settings = ph::settings_from_env();
    if (!o.profile.empty()) settings.profile = o.profile;
    if (o.device_seed >= 0) settings.config.device_seed = static_cast<uint64_t>(o.device_seed);
    // Calibration is a lab step at a fixed instant: the chip is not drifting while it runs.
    settings.config.drift = false;
    device = std::make_unique<ph::SimulatedDevice>(ph::load_profile(settings.profile),
                                                   settings.config);
  } catch (const std::exception& e) {
    // A bad profile name or PFA_PHOTONIC_* value: the operator's input, nothing is written.
    throw Error(ErrorCode::invalid_argument, fmt::format("photonic_sim: {}", e.what()));
  }
  const std::string profile = device->params().name;
  const uint64_t seed = device->config().device_seed;

  ph::CalibrationData data;
  try {
    data = ph::calibrate(*device);  // probe error measured before and after, same inputs
  } catch (const std::exception& e) {
    throw Error(ErrorCode::internal, fmt::format("photonic_sim calibration failed: {}", e.what()));
  }
  const ph::CalibrationReport& r = data.report;
  const std::string record = ph::calibration_to_json(data);
  const nlohmann::json report = {
      {"wavelength_error_pm_before", r.wavelength_error_pm_before},
      {"wavelength_error_pm_after", r.wavelength_error_pm_after},
      {"power_uniformity_pct", r.power_uniformity_pct},
      {"residual_uniformity_pct", r.residual_uniformity_pct},
      {"crosstalk_db", r.crosstalk_db},
      {"crosstalk_db_design", r.crosstalk_db_design},
      {"rel_error_before", r.rel_error_before},
      {"rel_error_after", r.rel_error_after},
      {"pattern_cycles", r.cycles},
      {"heater_power_w", r.heater_power_w}};

  const auto store = context.open_store();
  store::ModelRecord model;
  model.kind = fmt::format("calibration:photonic_sim:{}:{}", profile, seed);
  model.model_json = record;
  model.metrics_json = report.dump();
  model.max_record_id = store->max_id();
  const int64_t id = store->save_model(model, /*make_active=*/false);

  // Next to the store: the default store's folder is where the plugin looks by itself.
  const auto file =
      store->path().parent_path() / ph::calibration_file_name(profile, seed);
  write_atomically(file, record);
  const bool found_by_default =
      context.store_path.empty() ||
      std::filesystem::weakly_canonical(store->path().parent_path()) ==
          std::filesystem::weakly_canonical(ph::default_state_directory());

  if (context.json) {
    context.print_json({{"plugin", "photonic_sim"},
                        {"profile", profile},
                        {"device_seed", seed},
                        {"dac_bits", settings.config.dac_bits},
                        {"adc_bits", settings.config.adc_bits},
                        {"report", report},
                        {"store", store->path().string()},
                        {"model_id", id},
                        {"kind", model.kind},
                        {"calibration_file", file.string()},
                        {"found_by_plugin_by_default", found_by_default}});
    return;
  }
  fmt::print("calibrated photonic_sim: profile {}, device seed {} (dac {} adc {} bits)\n", profile,
             seed, settings.config.dac_bits, settings.config.adc_bits);
  fmt::print("  wavelength error   {:.2f} -> {:.2f} pm (RMS ring resonance error)\n",
             r.wavelength_error_pm_before, r.wavelength_error_pm_after);
  fmt::print("  power uniformity   {:.2f} % (residual {:.3f} % with corrections)\n",
             r.power_uniformity_pct, r.residual_uniformity_pct);
  fmt::print("  crosstalk          {:.1f} dB (design {:.1f} dB)\n", r.crosstalk_db,
             r.crosstalk_db_design);
  fmt::print("  attention error    {:.2f} % -> {:.2f} % (relative, same probe inputs, vs fp64)\n",
             100 * r.rel_error_before, 100 * r.rel_error_after);
  fmt::print("stored as model #{} ({}) in {}\n", id, model.kind, store->path().string());
  fmt::print("record {}\n", file.string());
  if (found_by_default) {
    fmt::print("photonic_sim loads it at start (PFA_PHOTONIC_CALIBRATION=auto, the default)\n");
  } else {
    fmt::print("photonic_sim loads it with PFA_PHOTONIC_CALIBRATION={}\n", file.string());
  }
}
#endif

void run_calibrate(const Context& context, const CalibrateOptions& o) {
  // Refused before the store is opened: a plugin that cannot be calibrated changes nothing.
  if (o.plugin != "photonic_sim") {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("'{}' has no calibration: only photonic_sim (the simulated photonic "
                            "device) can be calibrated",
                            o.plugin));
  }
#ifdef PFA_TUNE_HAS_PHOTONIC
  calibrate_photonic(context, o);
#else
  (void)context;
  throw Error(ErrorCode::unsupported,
              "this pfa-tune was built without research/photonic: photonic_sim cannot be "
              "calibrated");
#endif
}

}  // namespace

void add_calibrate_command(CLI::App& app, Context& context) {
  auto options = std::make_shared<CalibrateOptions>();
  auto* cmd = app.add_subcommand(
      "calibrate",
      "Calibrate a backend's device: test patterns, per-channel gain/offset and crosstalk, the "
      "attention error before and after on the same inputs. Keeps the calibration in the store "
      "and in a file next to it that the plugin loads. Only photonic_sim can be calibrated.\n"
      "Example: pfa-tune calibrate photonic_sim --profile generic --device-seed 3");
  cmd->add_option("plugin", options->plugin, "the backend to calibrate (photonic_sim)")
      ->required();
  cmd->add_option("--profile", options->profile,
                  "photonic_sim device profile (default: PFA_PHOTONIC_PROFILE or generic)");
  cmd->add_option("--device-seed", options->device_seed,
                  "which simulated chip (default: PFA_PHOTONIC_DEVICE_SEED or 1)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([&context, options] { run_calibrate(context, *options); });
}

}  // namespace pfa::tune

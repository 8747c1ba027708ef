// `pfa-tune calibrate` end to end: the command runs against a real store file in a fresh temp
// folder, the photonic_sim plugin (through the engine) picks the record up, and the error it
// removes is measured on fresh random inputs against exact fp64 attention, the same inputs run
// through the same chip uncalibrated. A record of another chip is refused; a plugin that cannot be
// calibrated changes nothing.
#include "attention_case.h"
#include "tune_support.h"

#include <pfa/engine.h>
#include <pfa/store/store.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>

namespace pfa {
namespace {

using tune::testing::read_file;
using tune::testing::run_tune;
using tune::testing::TempDir;

// Sets PFA_PHOTONIC_* (and other) variables for one scope; restores them after.
class EnvScope {
 public:
  explicit EnvScope(const std::map<std::string, std::optional<std::string>>& vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name.c_str());
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }
  ~EnvScope() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

// The plugin reads its settings once at create: build the engine inside the scope.
Engine photonic_engine(const std::map<std::string, std::optional<std::string>>& vars) {
  EnvScope env(vars);
  EngineOptions options;
  const char* dir = std::getenv("PFA_BUILD_LIB_DIR");
  options.plugins.paths = {std::string(dir ? dir : ".") + "/pfa_plugin_photonic_sim.so"};
  options.plugins.default_paths = false;
  return Engine(options);
}

Report run_once(Engine& engine, test::AttentionCase& c) {
  AttentionOptions options = c.options();
  options.backend = "photonic_sim";
  options.what_if = true;
  options.max_rel_error = 1.0;
  return engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), options);
}

// A chip no other test uses: device seeds 2..1e6 (1 is the default everywhere else).
uint64_t fresh_device_seed() { return 2 + test::fresh_seed() % 1000000; }

nlohmann::json calibrate_json(const TempDir& dir, const std::filesystem::path& store,
                              uint64_t device_seed) {
  const auto r = run_tune({"--store", store.string(), "--json", "calibrate", "photonic_sim",
                           "--device-seed", std::to_string(device_seed)},
                          dir);
  EXPECT_EQ(r.status, 0) << r.err;
  return nlohmann::json::parse(r.out);  // --json output parses (throws, failing the test, if not)
}

TEST(PhotonicCalibrateCli, StoredCalibrationRemovesMeasuredError) {
  TempDir dir;
  const auto store_path = dir / "pfa.db";
  const uint64_t device_seed = fresh_device_seed();
  const nlohmann::json out = calibrate_json(dir, store_path, device_seed);
  SCOPED_TRACE("device seed " + std::to_string(device_seed));

  // The report: the lab figures and the probe error before/after on the same inputs.
  EXPECT_EQ(out.at("plugin"), "photonic_sim");
  EXPECT_EQ(out.at("profile"), "generic");
  EXPECT_EQ(out.at("device_seed").get<uint64_t>(), device_seed);
  const auto& rep = out.at("report");
  EXPECT_GT(rep.at("wavelength_error_pm_before").get<double>(), 5.0);
  EXPECT_LT(rep.at("wavelength_error_pm_after").get<double>(), 1.0);
  EXPECT_GT(rep.at("power_uniformity_pct").get<double>(), 0.5);
  EXPECT_LT(rep.at("residual_uniformity_pct").get<double>(),
            rep.at("power_uniformity_pct").get<double>());
  EXPECT_NEAR(rep.at("crosstalk_db").get<double>(), rep.at("crosstalk_db_design").get<double>(),
              1.5);
  EXPECT_LT(rep.at("rel_error_after").get<double>(),
            0.5 * rep.at("rel_error_before").get<double>());

  // The store holds it as a model row of its own kind (not active: no routing model changes).
  store::Store store(store_path);
  const std::string kind = "calibration:photonic_sim:generic:" + std::to_string(device_seed);
  EXPECT_EQ(out.at("kind"), kind);
  const auto models = store.models(kind);
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].id, out.at("model_id").get<int64_t>());
  EXPECT_FALSE(models[0].active);
  const auto record = nlohmann::json::parse(models[0].model_json);
  EXPECT_EQ(record.at("device_seed").get<uint64_t>(), device_seed);
  EXPECT_EQ(nlohmann::json::parse(models[0].metrics_json).at("rel_error_after"),
            rep.at("rel_error_after"));
  // ... and the file next to the store is the same record.
  const std::filesystem::path file = out.at("calibration_file").get<std::string>();
  EXPECT_EQ(file.parent_path(), dir.path());
  EXPECT_EQ(nlohmann::json::parse(read_file(file)), record);
  EXPECT_FALSE(out.at("found_by_plugin_by_default").get<bool>());

  // The same chip, uncalibrated and with the stored record, on the same fresh inputs.
  const std::string seed_text = std::to_string(device_seed);
  Engine uncal = photonic_engine({{"PFA_PHOTONIC_DEVICE_SEED", seed_text},
                                  {"PFA_PHOTONIC_CALIBRATION", "off"}});
  Engine cal = photonic_engine({{"PFA_PHOTONIC_DEVICE_SEED", seed_text},
                                {"PFA_PHOTONIC_CALIBRATION", file.string()}});
  ASSERT_TRUE(uncal.load_errors().empty()) << uncal.load_errors()[0].message;
  ASSERT_TRUE(cal.load_errors().empty()) << cal.load_errors()[0].message;
  EXPECT_NE(cal.plugins()[0]->device_info(kDLCPU, 0).detail.find("calibrated stored"),
            std::string::npos)
      << cal.plugins()[0]->device_info(kDLCPU, 0).detail;

  std::mt19937_64 rng(test::fresh_seed());
  for (const int64_t len : {64, 256}) {
    auto c = test::make_case(make_problem(1, 2, 2, len, len, 64, PFA_DTYPE_FP32, false),
                             PFA_LAYOUT_BSHD, rng);
    const auto reference = test::reference_attention(c);
    const Report before = run_once(uncal, c);
    const double error_before = test::relative_error(c, reference);
    const Report after = run_once(cal, c);
    const double error_after = test::relative_error(c, reference);
    SCOPED_TRACE("L = " + std::to_string(len));
    std::printf("device seed %llu, L = %lld: relative error %.4f uncalibrated -> %.4f with the "
                "stored calibration (same inputs, vs fp64)\n",
                static_cast<unsigned long long>(device_seed), static_cast<long long>(len),
                error_before, error_after);
    EXPECT_EQ(std::string(before.detail.data()).rfind("generic dac8 adc8 uncal", 0), 0u)
        << before.detail.data();
    EXPECT_EQ(std::string(after.detail.data()), "generic dac8 adc8 cal");
    // Uncalibrated the chip is near 20 % (crosstalk, gain spread); calibrated a few percent.
    EXPECT_GT(error_before, 0.05);
    EXPECT_LT(error_after, 0.5 * error_before);
    EXPECT_LT(error_after, 0.06);
    // What the plugin reports (sampled rows) tracks the error measured here.
    EXPECT_LT(after.error_estimate, before.error_estimate);
  }
}

TEST(PhotonicCalibrateCli, PluginFindsTheRecordInTheDefaultStateFolder) {
  TempDir dir;
  const uint64_t device_seed = fresh_device_seed();
  const std::string seed_text = std::to_string(device_seed);
  // No --store: the default store and its folder under XDG_STATE_HOME.
  EnvScope env({{"XDG_STATE_HOME", dir.path().string()}});
  const auto r = run_tune({"--json", "calibrate", "photonic_sim", "--device-seed", seed_text}, dir);
  ASSERT_EQ(r.status, 0) << r.err;
  const auto out = nlohmann::json::parse(r.out);
  EXPECT_EQ(std::filesystem::path(out.at("store").get<std::string>()), dir / "pfa" / "pfa.db");
  EXPECT_TRUE(out.at("found_by_plugin_by_default").get<bool>());
  const std::filesystem::path file = out.at("calibration_file").get<std::string>();
  EXPECT_EQ(file.parent_path(), dir / "pfa");

  // PFA_PHOTONIC_CALIBRATION unset (auto): the plugin loads this chip's stored record.
  Engine engine = photonic_engine(
      {{"PFA_PHOTONIC_DEVICE_SEED", seed_text}, {"PFA_PHOTONIC_CALIBRATION", std::nullopt}});
  ASSERT_TRUE(engine.load_errors().empty()) << engine.load_errors()[0].message;
  const std::string info = engine.plugins()[0]->device_info(kDLCPU, 0).detail;
  EXPECT_NE(info.find("calibrated stored " + file.string()), std::string::npos) << info;

  // Another chip finds no record of its own there and calibrates itself at start.
  Engine other = photonic_engine({{"PFA_PHOTONIC_DEVICE_SEED", std::to_string(device_seed + 1)},
                                  {"PFA_PHOTONIC_CALIBRATION", std::nullopt}});
  ASSERT_TRUE(other.load_errors().empty()) << other.load_errors()[0].message;
  const std::string other_info = other.plugins()[0]->device_info(kDLCPU, 0).detail;
  EXPECT_NE(other_info.find("calibrated at start"), std::string::npos) << other_info;
}

TEST(PhotonicCalibrateCli, ARecordOfAnotherChipIsRefusedAndTheDeviceRunsUncalibrated) {
  TempDir dir;
  const uint64_t device_seed = fresh_device_seed();
  const nlohmann::json out = calibrate_json(dir, dir / "pfa.db", device_seed);
  const std::string file = out.at("calibration_file").get<std::string>();
  const std::string other_seed = std::to_string(device_seed + 1);

  Engine refused = photonic_engine(
      {{"PFA_PHOTONIC_DEVICE_SEED", other_seed}, {"PFA_PHOTONIC_CALIBRATION", file}});
  Engine off = photonic_engine(
      {{"PFA_PHOTONIC_DEVICE_SEED", other_seed}, {"PFA_PHOTONIC_CALIBRATION", "off"}});
  ASSERT_TRUE(refused.load_errors().empty()) << refused.load_errors()[0].message;
  ASSERT_TRUE(off.load_errors().empty()) << off.load_errors()[0].message;
  const std::string info = refused.plugins()[0]->device_info(kDLCPU, 0).detail;
  EXPECT_NE(info.find("uncalibrated: refused"), std::string::npos) << info;
  EXPECT_NE(info.find("device seed " + std::to_string(device_seed) + ", not this device"),
            std::string::npos)
      << info;

  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(make_problem(1, 2, 2, 128, 128, 64, PFA_DTYPE_FP32, false),
                           PFA_LAYOUT_BSHD, rng);
  const Report r = run_once(refused, c);
  EXPECT_EQ(std::string(r.detail.data()),
            "generic dac8 adc8 uncal: record refused (not this chip)");
  const auto output = [&c] {
    const auto* p = static_cast<const float*>(c.out.data());
    return std::vector<float>(p, p + c.out.numel());
  };
  const std::vector<float> refused_out = output();
  run_once(off, c);
  const std::vector<float> off_out = output();
  // Nothing of the foreign record was applied: bit for bit the uncalibrated chip.
  EXPECT_EQ(refused_out, off_out);
}

TEST(PhotonicCalibrateCli, APluginWithoutCalibrationFailsAndChangesNothing) {
  TempDir dir;
  const auto store_path = dir / "pfa.db";
  // No store yet: none is created.
  auto r = run_tune({"--store", store_path.string(), "calibrate", "cpu_flash"}, dir);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("only photonic_sim"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(store_path));

  // An existing store with a calibration in it: byte for byte the same afterwards.
  calibrate_json(dir, store_path, fresh_device_seed());
  {
    store::Store s(store_path);  // folds the WAL in on close, so the bytes below are settled
  }
  const std::string before = read_file(store_path);
  const auto count_files = [&dir] {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++n;
    return n;
  };
  const size_t files_before = count_files();
  r = run_tune({"--store", store_path.string(), "--json", "calibrate", "cpu_flash"}, dir);
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find("'cpu_flash' has no calibration"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(store_path), before);
  EXPECT_EQ(count_files(), files_before);

  // A bad option is bad input too.
  r = run_tune({"--store", store_path.string(), "calibrate", "photonic_sim", "--device-seed", "-3"},
               dir);
  EXPECT_EQ(r.status, 2);
  r = run_tune({"--store", store_path.string(), "calibrate", "photonic_sim", "--profile",
                "no_such_chip"},
               dir);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("no_such_chip"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(store_path), before);
}

// Drift without the temperature loop, time sped up: a stored calibration goes stale; the run
// detail says so and the estimate the router reads rises even before a call has measured it.
TEST(PhotonicCalibrateCli, StaleStoredCalibrationRaisesTheEstimate) {
  TempDir dir;
  const uint64_t device_seed = fresh_device_seed();
  const nlohmann::json out = calibrate_json(dir, dir / "pfa.db", device_seed);
  Engine engine = photonic_engine({{"PFA_PHOTONIC_DEVICE_SEED", std::to_string(device_seed)},
                                   {"PFA_PHOTONIC_CALIBRATION",
                                    out.at("calibration_file").get<std::string>()},
                                   {"PFA_PHOTONIC_DRIFT", "free"},
                                   {"PFA_PHOTONIC_TIME_SCALE", "500"}});
  ASSERT_TRUE(engine.load_errors().empty()) << engine.load_errors()[0].message;
  const Plugin& plugin = *engine.plugins()[0];
  const Problem problem = make_problem(1, 2, 2, 64, 64, 64, PFA_DTYPE_FP32, false);
  const double prior = plugin.estimate(problem).rel_error;
  // 80 ms at 500x: 40 s simulated, about 0.8 K, about 55 pm of ring shift (stale past 10 pm).
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  const double drifted = plugin.estimate(problem).rel_error;
  EXPECT_GT(drifted, 1.5 * prior) << prior << " -> " << drifted;
  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(problem, PFA_LAYOUT_BSHD, rng);
  const Report r = run_once(engine, c);
  EXPECT_NE(std::string(r.detail.data()).find("cal stale"), std::string::npos) << r.detail.data();
}

}  // namespace
}  // namespace pfa

#include "pfa/photonic/settings.h"

#include <pwd.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <stdexcept>

namespace pfa::photonic {

namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v ? v : nullptr;
}

long long env_int(const char* name, long long fallback) {
  const char* v = env(name);
  if (v == nullptr) return fallback;
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (end == v || *end != '\0') {
    throw std::runtime_error(std::string(name) + " must be an integer, not '" + v + "'");
  }
  return x;
}

}  // namespace

Settings settings_from_env() {
  Settings s;
  if (const char* v = env("PFA_PHOTONIC_PROFILE")) s.profile = v;
  const long long bits = env_int("PFA_PHOTONIC_BITS", 8);
  const long long dac = env_int("PFA_PHOTONIC_DAC_BITS", bits);
  const long long adc = env_int("PFA_PHOTONIC_ADC_BITS", bits);
  if (dac < 1 || dac > 24 || adc < 1 || adc > 24) {
    throw std::runtime_error("PFA_PHOTONIC_BITS (and _DAC_BITS, _ADC_BITS) must be 1..24");
  }
  s.config.dac_bits = static_cast<int>(dac);
  s.config.adc_bits = static_cast<int>(adc);
  s.config.noise_seed = static_cast<uint64_t>(env_int("PFA_PHOTONIC_SEED", 1));
  s.config.device_seed = static_cast<uint64_t>(env_int("PFA_PHOTONIC_DEVICE_SEED", 1));
  const std::string drift = env("PFA_PHOTONIC_DRIFT") ? env("PFA_PHOTONIC_DRIFT") : "off";
  if (drift != "off" && drift != "loop" && drift != "free") {
    throw std::runtime_error("PFA_PHOTONIC_DRIFT must be off, loop or free, not '" + drift + "'");
  }
  s.config.drift = drift != "off";
  s.config.control_loop = drift != "free";
  if (const char* v = env("PFA_PHOTONIC_TIME_SCALE")) {
    char* end = nullptr;
    s.time_scale = std::strtod(v, &end);
    if (end == v || *end != '\0' || !(s.time_scale >= 0)) {
      throw std::runtime_error(std::string("PFA_PHOTONIC_TIME_SCALE must be a number >= 0, not '") +
                               v + "'");
    }
  }
  if (const char* v = env("PFA_PHOTONIC_CALIBRATION")) s.calibration = v;
  s.sample_rows = static_cast<int>(env_int("PFA_PHOTONIC_SAMPLE_ROWS", 16));
  if (s.sample_rows < 0) throw std::runtime_error("PFA_PHOTONIC_SAMPLE_ROWS must be >= 0");
  if (const char* v = env("PFA_PHOTONIC_LOG")) s.log_path = v;
  return s;
}

std::string default_state_directory() {
  // The same folder as the execution store's default (store/src/store.cpp, default_path).
  const char* state = std::getenv("XDG_STATE_HOME");
  if (state != nullptr && state[0] == '/') return std::string(state) + "/pfa";
  std::string home = env("HOME") ? env("HOME") : "";
  if (home.empty()) {
    passwd pw{};
    passwd* found = nullptr;
    std::array<char, 4096> buffer{};
    if (getpwuid_r(getuid(), &pw, buffer.data(), buffer.size(), &found) == 0 && found &&
        found->pw_dir) {
      home = found->pw_dir;
    }
  }
  return home.empty() ? std::string() : home + "/.local/state/pfa";
}

std::string calibration_file_name(const std::string& profile_name, uint64_t device_seed) {
  std::string name = profile_name;
  for (char& ch : name) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
    if (!ok) ch = '_';
  }
  return "photonic_sim-" + name + "-dev" + std::to_string(device_seed) + ".calibration.json";
}

}  // namespace pfa::photonic

#include "pfa/photonic/settings.h"

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

}  // namespace pfa::photonic

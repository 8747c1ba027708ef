// Shared by the three research plugins (performer, spectral, quantum). Reading a research plugin's settings from environment variables at create(): a missing variable
// gives the default, a malformed or out-of-range one is an error the host shows.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

namespace pfa::plugin {

// Sets *value from the variable `name` when present. Returns false (and fills *error) when the
// text is not a number in [lo, hi].
inline bool env_int(const char* name, int64_t lo, int64_t hi, int64_t* value, std::string* error) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return true;
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(text, &end, 0);
  if (errno != 0 || end == text || *end != '\0' || x < lo || x > hi) {
    *error = std::string(name) + "='" + text + "' is not an integer in [" + std::to_string(lo) +
             ", " + std::to_string(hi) + "]";
    return false;
  }
  *value = x;
  return true;
}

inline bool env_double(const char* name, double lo, double hi, double* value,
                       std::string* error) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return true;
  char* end = nullptr;
  errno = 0;
  const double x = std::strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !(x >= lo && x <= hi)) {
    *error = std::string(name) + "='" + text + "' is not a number in [" + std::to_string(lo) +
             ", " + std::to_string(hi) + "]";
    return false;
  }
  *value = x;
  return true;
}

// The CPU model from /proc/cpuinfo, for device_info().
inline std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      const auto start = colon == std::string::npos ? colon : line.find_first_not_of(" \t", colon + 1);
      if (start != std::string::npos) return line.substr(start);
    }
  }
  return "unknown CPU";
}

}  // namespace pfa::plugin

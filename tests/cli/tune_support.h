// Helpers for the pfa-tune tests: a temp folder, running pfa-tune, a store of realistic records,
// and a file's bytes for "nothing changed" checks.
#pragma once

#include <pfa/store/store.h>

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace pfa::tune::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "pfa-tune-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct RunResult {
  int status = -1;
  std::string out;
  std::string err;
};

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string quote(const std::string& arg) {
  std::string q = "'";
  for (char c : arg) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs pfa-tune with `args`; stdout and stderr captured separately.
inline RunResult run_tune(const std::vector<std::string>& args, const TempDir& dir) {
  std::string cmd = quote(PFA_TUNE_PATH);
  for (const auto& a : args) cmd += " " + quote(a);
  const auto err_path = dir / "stderr.txt";
  cmd += " 2>" + quote(err_path.string());
  RunResult r;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  const int raw = pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.err = read_file(err_path);
  return r;
}

// Successful CPU runs of two real backends over a sweep of sequence lengths and head dims (cost
// roughly proportional to FLOPs, one backend faster on short sequences and the other on long
// ones), a few repeats each, and one failure.
inline std::vector<store::ExecutionRecord> realistic_records(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> noise(0.0, 0.05);
  std::vector<store::ExecutionRecord> out;
  int64_t t = 1'700'000'000'000'000;
  for (int64_t d : {64, 128}) {
    for (int64_t l = 64; l <= 2048; l *= 2) {
      for (const char* backend : {"cpu_flash", "torch_sdpa"}) {
        for (int rep = 0; rep < 3; ++rep) {
          store::ExecutionRecord r;
          r.timestamp_us = t += 1000;
          r.problem = make_problem(1, 8, 8, l, l, d, PFA_DTYPE_FP32, l % 128 == 0);
          const double flops = attention_flops(r.problem);
          const bool flash = std::string(backend) == "cpu_flash";
          const double rate = flash ? 20e9 : 12e9 + 8e9 * (l >= 512);
          r.latency_s = (flash ? 20e-6 : 60e-6) + flops / rate * noise(rng);
          r.wall_s = r.latency_s;
          r.energy_j = r.latency_s * 65.0;
          r.energy_measured = false;
          store::set_text(r.backend, backend);
          store::set_text(r.backend_version, "0.1.0");
          store::set_text(r.device_name, "Test CPU");
          store::set_text(r.device_detail, "avx2 fma, 2 threads");
          store::set_text(r.device_class, "cpu");
          store::set_text(r.pfa_version, "0.1.0");
          r.source = store::RecordSource::bench;
          out.push_back(r);
        }
      }
    }
  }
  store::ExecutionRecord failed = out.front();
  failed.ok = false;
  failed.status = PFA_STATUS_INTERNAL;
  failed.latency_s = std::nan("");
  store::set_text(failed.failure, "internal: scratch allocation failed");
  out.push_back(failed);
  return out;
}

}  // namespace pfa::tune::testing

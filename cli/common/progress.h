// Progress for long work: a redrawn bar on a terminal, one plain line per step otherwise.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace pfa::cli {

class Progress {
 public:
  // Writes to stderr so that stdout (and --json) stays clean. Silent when `quiet`.
  Progress(std::string label, size_t total, bool quiet = false);
  ~Progress();
  void step(const std::string& what);  // one unit done
  void finish();

 private:
  std::string label_;
  size_t total_, done_ = 0;
  bool quiet_, terminal_, finished_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace pfa::cli

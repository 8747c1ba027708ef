#include "progress.h"

#include <unistd.h>

#include <algorithm>

namespace pfa::cli {

Progress::Progress(std::string label, size_t total, bool quiet)
    : label_(std::move(label)), total_(std::max<size_t>(total, 1)), quiet_(quiet),
      terminal_(isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() { finish(); }

void Progress::step(const std::string& what) {
  ++done_;
  if (quiet_) return;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double eta = done_ ? elapsed / done_ * (total_ - std::min(done_, total_)) : 0;
  if (terminal_) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * done_ / total_);
    std::fprintf(stderr, "\r%s [%.*s%*s] %zu/%zu  %4.0fs left  %-40.40s", label_.c_str(), filled,
                 "##############################", kWidth - filled, "", done_, total_, eta,
                 what.c_str());
  } else {
    std::fprintf(stderr, "%s %zu/%zu %s\n", label_.c_str(), done_, total_, what.c_str());
  }
  std::fflush(stderr);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (!quiet_ && terminal_ && done_ > 0) std::fprintf(stderr, "\n");
}

}  // namespace pfa::cli

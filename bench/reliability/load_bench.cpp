// load_bench: calls per second through one engine from N threads, with and without recording every
// execution in the store, on a small decode-like problem served by the real cpu_flash plugin — the
// regime where per-call overhead matters. Prints machine, date and commit with the table.
#include "../../cli/common/problem_tensors.h"

#include <pfa/engine.h>
#include <pfa/store/store_observer.h>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

struct Result {
  double calls_per_s = 0;
  uint64_t calls = 0, dropped = 0;
};

Result run(bool record, int threads, double seconds, const std::string& backend) {
  const auto dir = std::filesystem::temp_directory_path() / "pfa_load_bench";
  std::filesystem::create_directories(dir);
  const auto path = dir / fmt::format("load_{}_{}.db", record, threads);
  std::filesystem::remove(path);
  pfa::EngineOptions options;
  std::shared_ptr<pfa::store::StoreObserver> recorder;
  if (record) options.observer = recorder = std::make_shared<pfa::store::StoreObserver>(path);
  pfa::Engine engine(options);
  std::atomic<uint64_t> calls{0};
  std::vector<std::thread> pool;
  const auto stop = Clock::now() + std::chrono::duration<double>(seconds);
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      pfa::cli::ProblemTensors tensors(
          pfa::parse_problem("batch=1,heads_q=8,heads_kv=2,seqlen_q=1,seqlen_k=256,head_dim=64,"
                             "dtype=fp32,causal=1"),
          rng);
      pfa::AttentionOptions o = tensors.options();
      o.backend = backend;
      uint64_t n = 0;
      while (Clock::now() < stop) {
        engine.attention(tensors.q.dl(), tensors.k.dl(), tensors.v.dl(), tensors.out.dl(), o);
        ++n;
      }
      calls += n;
    });
  }
  for (auto& t : pool) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  Result r;
  r.calls = calls.load();
  r.calls_per_s = static_cast<double>(r.calls) / elapsed;
  if (recorder) {
    recorder->writer().flush();
    r.dropped = recorder->writer().dropped();
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string commit = argc > 1 ? argv[1] : "unknown";
  const std::string backend = argc > 2 ? argv[2] : "cpu_flash";
  fmt::print("# Engine calls under load\n\n- machine: {}, {} hardware threads\n- commit: {}\n"
             "- problem: batch=1, heads 8/2, seqlen_q=1, seqlen_k=256, head_dim=64, fp32, causal "
             "(decode step), forced backend {}\n- 3 s per cell, baseline = the same engine without "
             "recording, measured in the same run\n\n",
             cpu_model(), std::thread::hardware_concurrency(), commit, backend);
  fmt::print("| threads | calls/s, no store | calls/s, recording | recording overhead | records "
             "dropped |\n|---|---|---|---|---|\n");
  for (int threads : {1, 2, 4, 8}) {
    const Result plain = run(false, threads, 3.0, backend);
    const Result recorded = run(true, threads, 3.0, backend);
    fmt::print("| {} | {:.0f} | {:.0f} | {:+.1f}% | {} of {} |\n", threads, plain.calls_per_s,
               recorded.calls_per_s, (plain.calls_per_s / recorded.calls_per_s - 1.0) * 100.0,
               recorded.dropped, recorded.calls);
  }
  return 0;
}

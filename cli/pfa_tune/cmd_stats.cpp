// pfa-tune stats: per backend, how many runs, wins, failures, and median latency by size band.
#include "../common/measure.h"
#include "context.h"

#include <pfa/store/store.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cmath>
#include <map>

namespace pfa::tune {

namespace {

// Size bands by matrix-product FLOPs, so latencies of like problems are compared.
const char* size_band(const Problem& p) {
  const double flops = attention_flops(p);
  if (flops < 1e7) return "<10 MFLOP";
  if (flops < 1e9) return "10M-1G";
  if (flops < 1e11) return "1G-100G";
  return ">100 GFLOP";
}
const char* kBands[] = {"<10 MFLOP", "10M-1G", "1G-100G", ">100 GFLOP"};

struct BackendStats {
  int64_t runs = 0, failures = 0, wins = 0, explored = 0;
  std::map<std::string, std::vector<double>> latency_by_band;
};

void run_stats(const Context& context) {
  const auto store = context.open_store();
  const auto records = store->records();
  std::map<std::string, BackendStats> stats;
  // problem + device -> backend -> latencies, to find each problem's winner.
  std::map<std::string, std::map<std::string, std::vector<double>>> by_problem;
  for (const auto& r : records) {
    const std::string backend(store::text(r.backend));
    auto& s = stats[backend];
    ++s.runs;
    if (!r.ok) {
      ++s.failures;
      continue;
    }
    if (r.explored) ++s.explored;
    s.latency_by_band[size_band(r.problem)].push_back(r.latency_s);
    by_problem[to_string(r.problem) + "@" + std::string(store::text(r.device_name))][backend]
        .push_back(r.latency_s);
  }
  for (const auto& [problem, backends] : by_problem) {
    if (backends.size() < 2) continue;  // a win needs a contest
    std::string best;
    double best_time = INFINITY;
    for (const auto& [backend, times] : backends) {
      const double m = cli::median(times);
      if (m < best_time || (m == best_time && backend < best)) best_time = m, best = backend;
    }
    ++stats[best].wins;
  }
  if (context.json) {
    nlohmann::json out = {{"store", store->path().string()},
                          {"records", records.size()},
                          {"problems", by_problem.size()},
                          {"backends", nlohmann::json::object()}};
    for (const auto& [backend, s] : stats) {
      nlohmann::json bands = nlohmann::json::object();
      for (const auto& [band, times] : s.latency_by_band) {
        bands[band] = {{"runs", times.size()}, {"median_s", cli::median(times)}};
      }
      out["backends"][backend] = {{"runs", s.runs}, {"failures", s.failures}, {"wins", s.wins},
                                  {"explored", s.explored}, {"median_latency_by_band", bands}};
    }
    context.print_json(out);
    return;
  }
  fmt::print("{} records over {} problems in {}\n\n", records.size(), by_problem.size(),
             store->path().string());
  fmt::print("{:<14} {:>8} {:>6} {:>9} {:>9}", "backend", "runs", "wins", "failures", "explored");
  for (const char* band : kBands) fmt::print(" {:>12}", band);
  fmt::print("\n{:<14} {:>8} {:>6} {:>9} {:>9}", "", "", "", "", "");
  for (size_t i = 0; i < std::size(kBands); ++i) fmt::print(" {:>12}", "median ms");
  fmt::print("\n");
  for (const auto& [backend, s] : stats) {
    fmt::print("{:<14} {:>8} {:>6} {:>9} {:>9}", backend, s.runs, s.wins, s.failures, s.explored);
    for (const char* band : kBands) {
      const auto it = s.latency_by_band.find(band);
      if (it == s.latency_by_band.end()) {
        fmt::print(" {:>12}", "-");
      } else {
        fmt::print(" {:>12.3f}", cli::median(it->second) * 1e3);
      }
    }
    fmt::print("\n");
  }
}

}  // namespace

void add_stats_command(CLI::App& app, Context& context) {
  auto* cmd = app.add_subcommand(
      "stats", "Per backend: runs, wins (fastest on a problem measured with others), failures, "
               "and median latency by problem size.\nExample: pfa-tune stats --store runs.db");
  cmd->callback([&context] { run_stats(context); });
}

}  // namespace pfa::tune

// pfa-tune bench: measures every supporting backend on every shape and records each timed run in
// the store.
#include "../common/measure.h"
#include "../common/progress.h"
#include "context.h"
#include "gated_observer.h"
#include "shape_source.h"

#include <pfa/store/store_observer.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <random>

namespace pfa::tune {

namespace {

struct BenchOptions {
  ShapeSource shapes;
  std::string backends;
  int repeat = 5;
  int warmup = 1;
};

void run_bench(const Context& context, const BenchOptions& o) {
  const auto problems = o.shapes.problems();
  if (o.repeat < 1 || o.warmup < 0) {
    throw Error(ErrorCode::invalid_argument, "--repeat must be >= 1 and --warmup >= 0");
  }
  auto recorder = std::make_shared<store::StoreObserver>(context.resolved_store_path(),
                                                         store::AsyncWriterOptions{},
                                                         store::RecordSource::bench);
  auto gate = std::make_shared<GatedObserver>(recorder);
  const auto engine = context.make_engine(gate);
  std::vector<std::string> backends = split_list(o.backends);
  for (const auto& name : backends) {
    if (engine->find_plugin(name) == nullptr) {
      throw Error(ErrorCode::invalid_argument, fmt::format("no backend named '{}' is loaded", name));
    }
  }
  if (backends.empty()) {
    for (const auto& p : engine->plugins()) backends.push_back(p->name());
  }

  std::mt19937_64 rng(std::random_device{}());
  nlohmann::json results = nlohmann::json::array();
  cli::Progress progress("bench", problems.size() * backends.size(), context.quiet || context.json);
  if (!context.json) {
    fmt::print("{:<100} {:<13} {:>10} {:>9}  {}\n", "shape", "backend", "median ms", "GFLOP/s",
               "path / note");
  }
  for (const auto& problem : problems) {
    cli::ProblemTensors tensors(problem, rng);
    for (const auto& name : backends) {
      const Plugin& plugin = *engine->find_plugin(name);
      std::string reason;
      nlohmann::json row = {{"shape", to_string(problem)}, {"backend", name}};
      if (!plugin.serves_device_type(problem.device_type)) {
        reason = fmt::format("does not serve {} tensors", device_name(problem.device_type));
      } else if (!plugin.supports(problem, &reason)) {
        // reason filled by supports()
      }
      if (!reason.empty()) {
        row["ok"] = false;
        row["skipped"] = reason;
      } else {
        gate->open(false);
        cli::measure(*engine, tensors, name, o.warmup, 0);
        gate->open(true);
        const cli::Measurement m = cli::measure(*engine, tensors, name, 0, o.repeat);
        gate->open(false);
        row["ok"] = m.ok;
        if (m.ok) {
          row["median_s"] = m.median_s;
          row["gflops"] = attention_flops(problem) / m.median_s * 1e-9;
          row["runs"] = m.latencies_s.size();
          row["simulated"] = m.simulated;
          row["detail"] = m.detail;
          if (m.energy_j >= 0) row["energy_j"] = m.energy_j;
        } else {
          row["failure"] = m.failure;
        }
      }
      if (!context.json) {
        if (row["ok"].get<bool>()) {
          fmt::print("{:<100} {:<13} {:>10.3f} {:>9.1f}  {}{}\n", to_string(problem), name,
                     row["median_s"].get<double>() * 1e3, row["gflops"].get<double>(),
                     row["detail"].get<std::string>(),
                     row["simulated"].get<bool>() ? " (modelled)" : "");
        } else {
          fmt::print("{:<100} {:<13} {:>10} {:>9}  {}\n", to_string(problem), name, "-", "-",
                     row.contains("skipped") ? "skipped: " + row["skipped"].get<std::string>()
                                             : "FAILED: " + row["failure"].get<std::string>());
        }
      }
      results.push_back(std::move(row));
      progress.step(fmt::format("{} {}", name, to_string(problem)));
    }
  }
  progress.finish();
  recorder->writer().flush();
  const auto& writer = recorder->writer();
  if (context.json) {
    context.print_json({{"store", context.resolved_store_path().string()},
                        {"shapes", problems.size()},
                        {"results", results},
                        {"recorded", writer.written()},
                        {"dropped", writer.dropped()},
                        {"failed_to_record", writer.failed()}});
  } else {
    fmt::print("\nrecorded {} runs in {}{}\n", writer.written(),
               context.resolved_store_path().string(),
               writer.dropped() + writer.failed()
                   ? fmt::format(" ({} dropped, {} failed: {})", writer.dropped(), writer.failed(),
                                 writer.last_error())
                   : "");
  }
}

}  // namespace

void add_bench_command(CLI::App& app, Context& context) {
  auto options = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand(
      "bench", "Measure every supporting backend on every shape and record each run in the store.\n"
               "Example: pfa-tune bench --grid \"batch=1;heads_q=8;seqlen_q=256..4096;"
               "head_dim=64;dtype=fp32;causal=0,1\" --repeat 5");
  options->shapes.add_options(*cmd);
  cmd->add_option("--backends", options->backends, "only these backends, comma-separated");
  cmd->add_option("--repeat", options->repeat, "timed runs per backend and shape (default 5)");
  cmd->add_option("--warmup", options->warmup, "untimed runs first (default 1)");
  cmd->callback([&context, options] { run_bench(context, *options); });
}

}  // namespace pfa::tune

// pfa-tune bench: measures every supporting backend on every shape and records each timed run in
// the store.
#include "../common/measure.h"
#include "../common/progress.h"
#include "context.h"
#include "gated_observer.h"
#include "shape_source.h"

#include <pfa/store/store_observer.h>

#include <CLI/CLI.hpp>
#include <stdlib.h>
#include <fmt/format.h>

#include <memory>
#include <random>

namespace pfa::tune {

namespace {

struct BenchOptions {
  ShapeSource shapes;
  std::string backends;
  int repeat = 5;
  int warmup = 1;
  double energy_ms = 200;
};

void run_bench(const Context& context, const BenchOptions& o) {
  const auto problems = o.shapes.problems();
  if (o.repeat < 1 || o.warmup < 0 || o.energy_ms < 0) {
    throw Error(ErrorCode::invalid_argument,
                "--repeat must be >= 1, --warmup >= 0 and --energy-ms >= 0");
  }
  // Refuse a store this user may not write before measuring anything (the writer alone would
  // go on and count every record as failed, as an application's engine should).
  context.open_store();
  auto recorder = std::make_shared<store::StoreObserver>(context.resolved_store_path(),
                                                         store::AsyncWriterOptions{},
                                                         store::RecordSource::bench);
  auto gate = std::make_shared<GatedObserver>(recorder);
  // The command times every call itself (events between repeats on CUDA) and records those
  // figures: the engine's own deferred GPU timing would only add work to each measured call.
  setenv("PFA_GPU_TIMING", "0", /*overwrite=*/0);
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
    fmt::print("{:<100} {:<20} {:>10} {:>9}  {}\n", "shape", "backend", "median ms", "GFLOP/s",
               "path / note");
  }
  for (const auto& problem : problems) {
    // CUDA tensors need a CUDA runtime and device: without them every backend skips the shape.
    std::unique_ptr<cli::ProblemTensors> owned;
    std::string no_tensors;
    try {
      owned = std::make_unique<cli::ProblemTensors>(problem, rng);
    } catch (const Error& e) {
      no_tensors = e.what();
    }
    for (const auto& name : backends) {
      const Plugin& plugin = *engine->find_plugin(name);
      std::string reason = no_tensors;
      nlohmann::json row = {{"shape", to_string(problem)}, {"backend", name}};
      if (!reason.empty()) {
        // no tensors for this shape
      } else if (!plugin.serves_device_type(problem.device_type)) {
        reason = fmt::format("does not serve {} tensors", device_name(problem.device_type));
      } else if (!plugin.supports(problem, &reason)) {
        // reason filled by supports()
      }
      if (!reason.empty()) {
        row["ok"] = false;
        row["skipped"] = reason;
      } else {
        cli::MeasureOptions mo;
        mo.warmup = o.warmup;
        mo.repeat = o.repeat;
        mo.energy_window_s = o.energy_ms * 1e-3;
        gate->open_for_failures();
        cli::ProblemTensors& tensors = *owned;
        const cli::Measurement m = cli::measure(*engine, tensors, name, mo);
        gate->open(false);
        cli::record_measurement(*engine, tensors, m, *recorder);
        row["ok"] = m.ok;
        if (m.ok) {
          row["median_s"] = m.median_s;
          row["gflops"] = attention_flops(problem) / m.median_s * 1e-9;
          row["runs"] = m.latencies_s.size();
          row["simulated"] = m.simulated;
          row["gpu_timed"] = m.gpu_timed;
          row["detail"] = m.detail;
          row["tokens"] = problem.batch * problem.seqlen_q;
          if (m.energy_j >= 0) row["energy_j"] = m.energy_j;
          row["energy_measured"] = m.energy_measured;
          if (!m.energy_note.empty()) row["energy_note"] = m.energy_note;
        } else {
          row["failure"] = m.failure;
        }
      }
      if (!context.json) {
        if (row["ok"].get<bool>()) {
          fmt::print("{:<100} {:<20} {:>10.3f} {:>9.1f}  {}{}{}\n", to_string(problem), name,
                     row["median_s"].get<double>() * 1e3, row["gflops"].get<double>(),
                     row["detail"].get<std::string>(),
                     row["simulated"].get<bool>() ? " (modelled)" : "",
                     row["energy_measured"].get<bool>()
                         ? fmt::format(" {:.4f} J/call", row["energy_j"].get<double>())
                         : "");
        } else {
          fmt::print("{:<100} {:<20} {:>10} {:>9}  {}\n", to_string(problem), name, "-", "-",
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
  // Energy asked for but not measured (no NVML, no counter, no CUDA): say why, once.
  std::string energy_note;
  for (const auto& row : results) {
    if (row.contains("energy_note") && !row.value("energy_measured", false)) {
      energy_note = row["energy_note"].get<std::string>();
      break;
    }
  }
  const auto& writer = recorder->writer();
  if (context.json) {
    context.print_json({{"store", context.resolved_store_path().string()},
                        {"shapes", problems.size()},
                        {"results", results},
                        {"recorded", writer.written()},
                        {"dropped", writer.dropped()},
                        {"failed_to_record", writer.failed()}});
  } else {
    if (!energy_note.empty()) fmt::print("\nenergy not measured: {}\n", energy_note);
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
  cmd->add_option("--energy-ms", options->energy_ms,
                  "CUDA: measure energy per call from NVML's energy counter over back-to-back "
                  "calls for at least this many milliseconds (default 200; 0: off)");
  cmd->callback([&context, options] { run_bench(context, *options); });
}

}  // namespace pfa::tune

// Measures one backend on one problem through the engine: warm-up runs, then timed repeats, and
// on a CUDA device optionally the energy per call from NVML's energy counter.
#pragma once

#include "problem_tensors.h"

#include <pfa/engine.h>

#include <string>
#include <vector>

namespace pfa::cli {

struct MeasureOptions {
  int warmup = 1;
  int repeat = 5;
  // CUDA only: back-to-back calls for at least this long, between two steps of the GPU's energy
  // counter, give the energy per call (0: no energy measurement). Needs NVML.
  double energy_window_s = 0;
};

struct Measurement {
  std::string backend;
  bool ok = false;
  std::string failure;             // why it failed or was not run
  std::vector<double> latencies_s; // one per timed repeat (modelled latency for simulated backends)
  std::vector<Report> reports;     // one per timed repeat, latency_s as measured here
  double median_s = 0;
  double energy_j = -1;            // per call: measured (NVML) or the backend's median; < 0 unknown
  bool energy_measured = false;    // energy_j comes from the GPU's energy counter
  std::string energy_note;         // how the energy was obtained, or why not
  bool simulated = false;
  bool gpu_timed = false;          // latencies are CUDA event times (the GPU idle at each start)
  std::string detail;              // the backend's path
};

// Runs `backend` (forced) `warmup` times untimed and `repeat` times timed; never throws for a
// backend failure (it is reported in the result).
//
// CPU: each repeat's latency is the engine's wall time of the backend's run().
// CUDA: each repeat is timed by a CUDA event pair recorded on the call's stream around the
// engine call and read after synchronising: the GPU time of one call that starts on an idle GPU,
// host-side launch work included. Nothing synchronises inside a repeat, only between repeats.
Measurement measure(Engine& engine, ProblemTensors& tensors, const std::string& backend,
                    const MeasureOptions& options);
Measurement measure(Engine& engine, ProblemTensors& tensors, const std::string& backend,
                    int warmup, int repeat);

// Hands each timed repeat of a successful measurement to `recorder` as the engine would have
// (problem, backend, forced-backend policy, status ok), with the measurement's latency and, where
// measured, energy. Nothing for a failed measurement: failed runs reach the store through the
// engine's own observer.
void record_measurement(Engine& engine, ProblemTensors& tensors, const Measurement& m,
                        ExecutionObserver& recorder);

double median(std::vector<double> values);

}  // namespace pfa::cli

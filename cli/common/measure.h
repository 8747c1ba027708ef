// Measures one backend on one problem through the engine: warm-up runs, then timed repeats.
#pragma once

#include "problem_tensors.h"

#include <pfa/engine.h>

#include <string>
#include <vector>

namespace pfa::cli {

struct Measurement {
  std::string backend;
  bool ok = false;
  std::string failure;             // why it failed or was not run
  std::vector<double> latencies_s; // one per timed repeat (modelled latency for simulated backends)
  double median_s = 0;
  double energy_j = -1;            // median per call, < 0 unknown
  bool simulated = false;
  std::string detail;              // the backend's path
};

// Runs `backend` (forced) `warmup` times untimed and `repeat` times timed; never throws for a
// backend failure (it is reported in the result).
Measurement measure(Engine& engine, ProblemTensors& tensors, const std::string& backend,
                    int warmup, int repeat);

double median(std::vector<double> values);

}  // namespace pfa::cli

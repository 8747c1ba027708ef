// What one attention call did: which backend served it, and at what cost.
#pragma once

#include <array>
#include <string_view>

namespace pfa {

struct Report {
  std::string_view backend;      // the plugin that produced the output (lives as long as the engine)
  // Wall time of the backend's run() as the engine measured it on the host. For CUDA tensors that
  // is the time to queue the work (run() never synchronises); the GPU time, from an event pair on
  // the caller's stream, reaches the router and the store once the work has finished.
  double latency_s = 0;
  double modelled_latency_s = 0; // simulated backends: the device model's latency
  double energy_j = -1;          // < 0 when unknown
  bool energy_measured = false;  // false when energy_j comes from a model
  bool simulated = false;        // the cost figures are modelled, not measured
  bool approximate = false;      // the backend is approximate by design
  double error_estimate = 0;     // expected relative error of the output
  double measured_rel_error = -1;  // error measured on this call's data by the backend, < 0 if not
  bool explored = false;         // the router chose this backend to learn, not because it predicted best
  int attempts = 1;              // backends tried, including ones that failed before this one
  std::array<char, 64> detail{}; // the backend's own word on which path ran
};

}  // namespace pfa

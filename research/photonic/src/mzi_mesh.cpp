#include "pfa/photonic/mzi_mesh.h"

namespace pfa::photonic {

MziMeshEstimate mzi_mesh_dynamic_product(const DeviceParams& p, int64_t m, int64_t n, int64_t k) {
  auto ceil_div = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  MziMeshEstimate e;
  // Each (n-tile, k-tile) of B is a new matrix for the mesh: decompose, set phases, settle.
  e.reprogrammings = ceil_div(n, p.core_height) * ceil_div(k, p.wavelengths);
  const int64_t rounds = ceil_div(e.reprogrammings, p.cores);
  e.settle_s = static_cast<double>(rounds) * p.mzi_settle_s;
  // Once set, a mesh takes one A vector per cycle.
  e.stream_s = static_cast<double>(rounds) * static_cast<double>(m) / p.clock_hz;
  return e;
}

}  // namespace pfa::photonic

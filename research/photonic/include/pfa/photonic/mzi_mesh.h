// Why the MZI-mesh engine is not used for attention (a documented non-option).
//
// An MZI mesh implements one fixed matrix: the matrix is decomposed (SVD into two unitaries and a
// diagonal, each unitary into Clements/Reck phase settings) and the thermal phase shifters must
// settle (about 2 us, LT default.yaml mzi.response_time) before the first input can pass. That is
// fine for weights, which are programmed once and streamed through millions of times. In
// attention both operands of Q . K^T and P . V are activations that change with every call and
// every head: each K tile would need its own decomposition and a 2 us settle for only a handful of
// query vectors (seq_q / W passes), so the mesh would spend almost all its time re-programming.
// The crossbar (dynamically operated) core modulates both operands at the clock rate instead.
// This function puts a number on it for a product C[M x N] = A[M x K] . B[N x K]^T.
#pragma once

#include "device_params.h"

#include <cstdint>

namespace pfa::photonic {

struct MziMeshEstimate {
  int64_t reprogrammings = 0;  // distinct B tiles that must be loaded into the mesh
  double settle_s = 0;         // reprogrammings x settle time
  double stream_s = 0;         // time to stream the A rows through the programmed meshes
  double total_s() const { return settle_s + stream_s; }
};

// A mesh of the crossbar's size (H x lambda weights) per core, reprogrammed for each B tile.
MziMeshEstimate mzi_mesh_dynamic_product(const DeviceParams& p, int64_t m, int64_t n, int64_t k);

}  // namespace pfa::photonic

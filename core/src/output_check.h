// A cheap sanity check of a backend's output: NaN or infinity in sampled rows of a CPU tensor.
#pragma once

#include <pfa/problem.h>

namespace pfa::detail {

// Scans up to 64 evenly spaced (batch, query, head) rows of `out` ([batch, seq, heads, dim] view
// with element strides); only CPU tensors are read, others pass. Rows that see no key are zeros by
// the ABI, so any non-finite value is a fault.
bool has_non_finite_output(const DLTensor& out, const Problem& problem) noexcept;

}  // namespace pfa::detail

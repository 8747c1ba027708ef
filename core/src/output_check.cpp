#include "output_check.h"

#include <cmath>
#include <cstring>

namespace pfa::detail {

namespace {

bool non_finite(const char* p, int32_t dtype) noexcept {
  if (dtype == PFA_DTYPE_FP32) {
    float f;
    std::memcpy(&f, p, 4);
    return !std::isfinite(f);
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  // All-ones exponent: infinity or NaN. fp16 has 5 exponent bits, bf16 8.
  return dtype == PFA_DTYPE_FP16 ? (h & 0x7c00u) == 0x7c00u : (h & 0x7f80u) == 0x7f80u;
}

}  // namespace

bool has_non_finite_output(const DLTensor& out, const Problem& p) noexcept {
  if (out.device.device_type != kDLCPU && out.device.device_type != kDLCUDAHost) return false;
  const int64_t rows = p.batch * p.seqlen_q * p.heads_q;
  const int64_t samples = rows < 64 ? rows : 64;
  const size_t element = dtype_size(p.dtype);
  const char* base = static_cast<const char*>(out.data) + out.byte_offset;
  for (int64_t s = 0; s < samples; ++s) {
    const int64_t row = s * rows / samples;
    const int64_t h = row % p.heads_q;
    const int64_t q = (row / p.heads_q) % p.seqlen_q;
    const int64_t b = row / (p.heads_q * p.seqlen_q);
    const int64_t offset = b * out.strides[0] + q * out.strides[1] + h * out.strides[2];
    for (int64_t d = 0; d < p.head_dim; ++d) {
      if (non_finite(base + static_cast<size_t>(offset + d) * element, p.dtype)) return true;
    }
  }
  return false;
}

}  // namespace pfa::detail

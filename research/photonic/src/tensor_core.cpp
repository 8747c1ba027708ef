#include "pfa/photonic/tensor_core.h"

#include <tbb/blocked_range.h>
#include <tbb/combinable.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>

namespace pfa::photonic {

EncodedRows encode_rows(const SignalChain& chain, const float* data, int64_t rows, int64_t n,
                        int64_t row_stride, int64_t elem_stride, Side side, bool nonnegative) {
  EncodedRows e;
  e.rows = rows;
  e.lambda = chain.wavelengths();
  e.chunks = chain.chunks(n);
  e.optical.resize(static_cast<size_t>(rows * e.chunks * e.lambda));
  e.scales.resize(static_cast<size_t>(rows * e.chunks));
  const int lanes = side == Side::a ? chain.width() : chain.height();
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, rows, 64), [&](const auto& range) {
    for (int64_t r = range.begin(); r < range.end(); ++r) {
      chain.encode(data + r * row_stride, n, elem_stride, static_cast<int>(r % lanes), side,
                   nonnegative, e.optical.data() + r * e.chunks * e.lambda,
                   e.scales.data() + r * e.chunks);
    }
  });
  return e;
}

AdcRange pilot_adc_range(const SignalChain& chain, const EncodedRows& a, const EncodedRows& b,
                         double sigmas) {
  if (sigmas <= 0) return make_adc_range(chain.physical_full_scale(), chain.adc_bits());
  const int L = chain.wavelengths();
  const int64_t step_a = std::max<int64_t>(1, a.rows / 64), step_b = std::max<int64_t>(1, b.rows / 64);
  const int64_t chunks = std::min(a.chunks, b.chunks);
  double sum2 = 0, peak = 0;
  int64_t count = 0;
  for (int64_t i = 0; i < a.rows; i += step_a) {
    for (int64_t j = 0; j < b.rows; j += step_b) {
      for (int64_t c = 0; c < chunks; ++c) {
        const double y = chain.analog(a.row(i) + c * L, b.row(j) + c * L,
                                      static_cast<int>(i % chain.width()),
                                      static_cast<int>(j % chain.height()));
        sum2 += y * y;
        peak = std::max(peak, std::abs(y));
        ++count;
      }
    }
  }
  const double s = chain.sigma();
  const double rms = count > 0 ? std::sqrt(sum2 / count + s * s) : 0.0;
  double full_scale = std::max(sigmas * rms, peak);
  if (!(full_scale > 0)) full_scale = chain.physical_full_scale();
  return make_adc_range(std::min(full_scale, chain.physical_full_scale()), chain.adc_bits());
}

std::vector<float> photonic_matmul(const SignalChain& chain, const EncodedRows& a,
                                   const EncodedRows& b, const AdcRange& adc, uint64_t stream,
                                   ProductStats* stats) {
  const int L = chain.wavelengths();
  const int64_t chunks = std::min(a.chunks, b.chunks);
  std::vector<float> c(static_cast<size_t>(a.rows * b.rows));
  tbb::combinable<int64_t> clipped_total([] { return int64_t{0}; });
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, a.rows, 4), [&](const auto& range) {
    int64_t clipped = 0;
    for (int64_t i = range.begin(); i < range.end(); ++i) {
      const uint64_t key = chain.noise_key((stream << 32) ^ static_cast<uint64_t>(i));
      const int w = static_cast<int>(i % chain.width());
      const float* ai = a.row(i);
      const float* si = a.scale(i);
      for (int64_t j = 0; j < b.rows; ++j) {
        const float* bj = b.row(j);
        const float* sj = b.scale(j);
        const int h = static_cast<int>(j % chain.height());
        float acc = 0;
        for (int64_t ch = 0; ch < chunks; ++ch) {
          acc += chain.detect(ai + ch * L, bj + ch * L, w, h, key, static_cast<uint32_t>(j),
                              static_cast<uint32_t>(ch), static_cast<uint32_t>(chunks), adc,
                              clipped) *
                 si[ch] * sj[ch];
        }
        c[static_cast<size_t>(i * b.rows + j)] = acc;
      }
    }
    clipped_total.local() += clipped;
  });
  if (stats != nullptr) {
    stats->detections += a.rows * b.rows * chunks;
    stats->clipped += clipped_total.combine(std::plus<int64_t>());
  }
  return c;
}

}  // namespace pfa::photonic

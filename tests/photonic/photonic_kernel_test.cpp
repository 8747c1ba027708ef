// The row kernel (src/detect_row.cpp: a fused AVX-512 kernel where the CPU has it, the portable
// one elsewhere; both are checked on every CPU) against the element-by-element signal chain, and
// the statistics of the detector noise it draws: mean, variance, tails, shape, independence,
// determinism.
#include "detect_row.h"

#include <pfa/photonic/counter_rng.h>
#include <pfa/photonic/device.h>
#include <pfa/photonic/signal_chain.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

namespace pfa::photonic {
namespace {

// Encoded operands: `rows` rows of `n` values uniform in [-1, 1).
struct Encoded {
  int64_t rows = 0, chunks = 0;
  std::vector<float> optical, scales;
};

Encoded encode(const SignalChain& chain, int64_t rows, int64_t n, Side side, uint64_t seed) {
  Encoded e;
  e.rows = rows;
  e.chunks = chain.chunks(n);
  const int L = chain.wavelengths();
  e.optical.resize(rows * e.chunks * L);
  e.scales.resize(rows * e.chunks);
  std::vector<float> raw(n);
  const int lanes = side == Side::a ? chain.width() : chain.height();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; ++i) raw[i] = static_cast<float>(2 * uniform(seed, r * n + i) - 1);
    chain.encode(raw.data(), n, 1, static_cast<int>(r % lanes), side, false,
                 e.optical.data() + r * e.chunks * L, e.scales.data() + r * e.chunks);
  }
  return e;
}

detail::TransposedB transpose(const Encoded& e, int L) {
  detail::TransposedB t(e.rows, e.chunks, L);
  for (int64_t n = 0; n < e.rows; ++n) {
    for (int64_t c = 0; c < e.chunks; ++c) {
      t.scales[t.scale_at(n, c)] = e.scales[n * e.chunks + c];
      for (int k = 0; k < L; ++k) t.optical[t.at(n, c, k)] = e.optical[(n * e.chunks + c) * L + k];
    }
  }
  return t;
}

using Kernel = void (*)(const detail::RowBlock&, const detail::TransposedB&,
                       const detail::DetectRange&, const detail::LaneNodes&,
                       const detail::RowNoise&, const AdcRange&, int64_t&);

// The kernel this CPU runs (the fused AVX-512 one where it can) and the portable one.
void check_against_the_chain(Kernel kernel, const char* name) {
  SimConfig config;  // generic, 8 bits, noise and variation on, uncalibrated
  const SimulatedDevice device(load_profile("generic"), config);
  const SignalChain chain(device, 3);
  const int L = chain.wavelengths(), W = chain.width(), H = chain.height();
  const int64_t n_b = 203, d = 40;  // a ragged tail of B vectors, a partial last chunk
  const int w = 5;
  for (int rows = 1; rows <= detail::kMaxRows; ++rows) {
    // Causal rows detect a range of keys that starts anywhere (not at a multiple of 16).
    const int64_t n_begin = rows == 3 ? 37 : 0;
    const Encoded a = encode(chain, rows, d, Side::a, 11);
    const Encoded b = encode(chain, n_b, d, Side::b, 12);
    const detail::TransposedB bt = transpose(b, L);
    detail::LaneNodes nodes;
    for (int64_t n = 0; n < n_b; ++n) {
      const int node = w * H + static_cast<int>(n % H);
      nodes.gain.push_back(chain.state().node_gain[node] / static_cast<float>(L));
      nodes.offset.push_back(chain.state().node_offset[node]);
      nodes.out_offset.push_back(chain.corrections().output_offset[node]);
      nodes.out_gain.push_back(chain.corrections().output_gain[node]);
    }
    // A narrow ADC range so that some detections clip.
    const AdcRange adc = make_adc_range(0.05, chain.adc_bits());
    std::vector<float> acc(rows * n_b, -1.0f);
    detail::RowBlock block;
    block.rows = rows;
    for (int t = 0; t < rows; ++t) {
      block.a[t] = a.optical.data() + t * a.chunks * L;
      block.a_scales[t] = a.scales.data() + t * a.chunks;
      block.noise_key[t] = chain.noise_key(100 + t);
      block.acc[t] = acc.data() + t * n_b;
    }
    int64_t clipped = 0;
    const detail::RowNoise noise{chain.sigma(), static_cast<uint32_t>(a.chunks)};
    if (rows == 2) {  // the chunks in two calls, the second adding to the first (as P . V does)
      kernel(block, bt, {0, 2, n_begin, n_b, true}, nodes, noise, adc, clipped);
      kernel(block, bt, {2, a.chunks, n_begin, n_b, false}, nodes, noise, adc, clipped);
    } else {
      kernel(block, bt, {0, a.chunks, n_begin, n_b, true}, nodes, noise, adc, clipped);
    }

    int64_t ref_clipped = 0, exact = 0;
    float one_code = 0;  // the largest change one ADC code makes to an output
    for (int t = 0; t < rows; ++t) {
      for (int64_t n = 0; n < n_begin; ++n) EXPECT_EQ(acc[t * n_b + n], -1.0f);  // untouched
      for (int64_t n = n_begin; n < n_b; ++n) {
        float ref = 0;
        for (int64_t c = 0; c < a.chunks; ++c) {
          const float s = a.scales[t * a.chunks + c] * b.scales[n * b.chunks + c];
          ref += chain.detect(block.a[t] + c * L, b.optical.data() + (n * b.chunks + c) * L, w,
                              static_cast<int>(n % H), block.noise_key[t],
                              static_cast<uint32_t>(n), static_cast<uint32_t>(c),
                              static_cast<uint32_t>(a.chunks), adc, ref_clipped) *
                 s;
          one_code = std::max(one_code, adc.step * nodes.out_gain[n] * s);
        }
        const float got = acc[t * n_b + n];
        // Rounding may differ in the last bit, which moves a detection lying on a code
        // boundary by one code; the same noise draw otherwise gives the same code.
        EXPECT_LE(std::abs(got - ref), 2.01f * one_code + 1e-5f * std::abs(ref))
            << "row " << t << " vector " << n;
        if (std::abs(got - ref) <= 1e-4f * (std::abs(ref) + one_code)) ++exact;
      }
    }
    std::printf("%s, rows %d: %lld of %lld outputs as the chain's, clipped %lld (chain %lld)\n",
                name, rows, static_cast<long long>(exact),
                static_cast<long long>(rows * (n_b - n_begin)), static_cast<long long>(clipped),
                static_cast<long long>(ref_clipped));
    EXPECT_GE(exact, rows * (n_b - n_begin) * 97 / 100);
    EXPECT_GT(ref_clipped, 0);
    EXPECT_NEAR(static_cast<double>(clipped), static_cast<double>(ref_clipped),
                2.0 + 0.02 * ref_clipped);
    (void)W;
  }
}

TEST(DetectKernel, MatchesTheSignalChainDetectionForDetection) {
  check_against_the_chain(detail::detect_rows, "this CPU's kernel");
  check_against_the_chain(detail::detect_rows_portable, "portable kernel");
}

// Zero operands: every detection reads offset 0 plus noise through a fine ADC.
struct NoiseRun {
  std::vector<float> out;  // [rows][n], each the sum over `chunks` detections
  int64_t clipped = 0;
};

NoiseRun noise_run(int rows, int64_t n_b, int64_t chunks, float sigma, uint64_t seed) {
  const int L = 12;
  detail::TransposedB bt(n_b, chunks, L);
  std::fill(bt.scales.begin(), bt.scales.end(), 1.0f);
  detail::LaneNodes nodes;
  nodes.gain.assign(n_b, 1.0f);
  nodes.offset.assign(n_b, 0.0f);
  nodes.out_offset.assign(n_b, 0.0f);
  nodes.out_gain.assign(n_b, 1.0f);
  std::vector<float> a(chunks * L, 0.0f), a_scales(chunks, 1.0f);
  NoiseRun r;
  r.out.assign(rows * n_b, 0.0f);
  detail::RowBlock block;
  block.rows = rows;
  for (int t = 0; t < rows; ++t) {
    block.a[t] = a.data();
    block.a_scales[t] = a_scales.data();
    block.noise_key[t] = stream_key(seed, t);
    block.acc[t] = r.out.data() + t * n_b;
  }
  detail::detect_rows(block, bt, {0, chunks, 0, n_b, true}, nodes,
                      {sigma, static_cast<uint32_t>(chunks)}, make_adc_range(1.0, 16), r.clipped);
  return r;
}

double mean_of(const std::vector<float>& x, size_t begin, size_t end) {
  double s = 0;
  for (size_t i = begin; i < end; ++i) s += x[i];
  return s / static_cast<double>(end - begin);
}

double correlation(const float* x, const float* y, size_t n) {
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  for (size_t i = 0; i < n; ++i) {
    sx += x[i];
    sy += y[i];
    sxx += double(x[i]) * x[i];
    syy += double(y[i]) * y[i];
    sxy += double(x[i]) * y[i];
  }
  const double m = static_cast<double>(n);
  return (sxy / m - sx / m * sy / m) /
         std::sqrt((sxx / m - sx / m * sx / m) * (syy / m - sy / m * sy / m));
}

TEST(DetectKernel, NoiseHasUnitVarianceIrwinHallShapeAndIndependentDraws) {
  const float sigma = 0.01f;
  const int rows = 4;
  const int64_t n_b = 8192 + 5;  // several blocks of B vectors and a ragged tail
  const NoiseRun r = noise_run(rows, n_b, 1, sigma, 7);
  EXPECT_EQ(r.clipped, 0);
  const double step = 1.0 / 32768;  // 16-bit ADC over [-1, 1)
  const double expected_var = double(sigma) * sigma + step * step / 12;
  double s1 = 0, s2 = 0, s4 = 0, peak = 0;
  for (float x : r.out) {
    s1 += x;
    s2 += double(x) * x;
    s4 += double(x) * x * x * x;
    peak = std::max(peak, std::abs(double(x)));
  }
  const double m = static_cast<double>(r.out.size());
  const double mean = s1 / m, var = s2 / m - mean * mean;
  std::printf("noise: mean %.3g sigma, variance %.4f of expected, excess kurtosis %.3f, peak %.3f "
              "sigma, lag-1 correlation %.4f\n", mean / sigma, var / expected_var,
              s4 / m / (var * var) - 3.0, peak / sigma,
              correlation(r.out.data(), r.out.data() + 1, n_b - 1));
  EXPECT_NEAR(mean, 0.0, 5 * sigma / std::sqrt(m));
  EXPECT_NEAR(var / expected_var, 1.0, 0.05);
  // Irwin-Hall(4): excess kurtosis -0.3, support +-sqrt(12) sigma.
  EXPECT_NEAR(s4 / m / (var * var) - 3.0, -0.3, 0.15);
  EXPECT_LE(peak, std::sqrt(12.0) * sigma + step);
  EXPECT_GE(peak, 2.8 * sigma);
  // Independent along B vectors and across rows.
  for (int t = 0; t < rows; ++t) {
    const float* x = r.out.data() + t * n_b;
    EXPECT_LT(std::abs(correlation(x, x + 1, n_b - 1)), 0.05) << "row " << t;
    if (t > 0) EXPECT_LT(std::abs(correlation(r.out.data(), x, n_b)), 0.05) << "row " << t;
  }
  EXPECT_NEAR(mean_of(r.out, 0, n_b), 0.0, 5 * sigma / std::sqrt(double(n_b)));
}

TEST(DetectKernel, NoiseSumsOverChunksAddVariances) {
  // Independent draws per chunk: the sum over C chunks has C times the variance.
  const float sigma = 0.01f;
  const int64_t chunks = 9, n_b = 4096;
  const NoiseRun r = noise_run(4, n_b, chunks, sigma, 9);
  double s1 = 0, s2 = 0;
  for (float x : r.out) {
    s1 += x;
    s2 += double(x) * x;
  }
  const double m = static_cast<double>(r.out.size());
  const double var = s2 / m - (s1 / m) * (s1 / m);
  std::printf("sum over %lld chunks: variance %.4f of chunks x sigma^2\n",
              static_cast<long long>(chunks), var / (chunks * double(sigma) * sigma));
  EXPECT_NEAR(var / (chunks * double(sigma) * sigma), 1.0, 0.06);
}

TEST(DetectKernel, SameSeedSameBitsOtherSeedOtherDraws) {
  const NoiseRun a = noise_run(3, 1000, 4, 0.01f, 21);
  const NoiseRun b = noise_run(3, 1000, 4, 0.01f, 21);
  const NoiseRun c = noise_run(3, 1000, 4, 0.01f, 22);
  EXPECT_EQ(std::memcmp(a.out.data(), b.out.data(), a.out.size() * sizeof(float)), 0);
  int same = 0;
  for (size_t i = 0; i < a.out.size(); ++i) same += a.out[i] == c.out[i];
  EXPECT_LT(same, static_cast<int>(a.out.size()) / 20);
}

TEST(DetectorNoise, AesRoundsInSoftwareMatchTheCpuInstructions) {
  // On a CPU with AES-NI ars5_block uses it; the software rounds must give the same bits.
  for (uint32_t i = 0; i < 2000; ++i) {
    const uint64_t key = stream_key(5, i);
    const uint32_t in[4] = {i * 2654435761u, i & 1, i >> 3, 0};
    uint32_t hw[4], sw[4];
    ars5_block(key, in, hw);
    ars5_block_software(key, in, sw);
    ASSERT_EQ(std::memcmp(hw, sw, sizeof hw), 0) << "block " << i;
  }
}

TEST(DetectorNoise, UnitVarianceIrwinHallAndIndependentNeighbours) {
  // Draws of one key over a product of 9 chunks: the four detections sharing AES blocks, the
  // next group, the next chunk and another key must all be uncorrelated.
  const uint64_t key = stream_key(3, 4), other = stream_key(3, 5);
  const uint32_t stride = 9, count = 1 << 18;
  std::vector<float> x(count), next_n(count), next_c(count), y(count);
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t n = i / 8, c = i % 8;
    x[i] = detector_noise(key, n, c, stride);
    next_n[i] = detector_noise(key, n + 1, c, stride);  // same block for 3 of 4 lanes
    next_c[i] = detector_noise(key, n, c + 1, stride);
    y[i] = detector_noise(other, n, c, stride);
  }
  double s1 = 0, s2 = 0, s4 = 0, peak = 0;
  for (float v : x) {
    s1 += v;
    s2 += double(v) * v;
    s4 += double(v) * v * v * v;
    peak = std::max(peak, std::abs(double(v)));
  }
  const double m = count, mean = s1 / m, var = s2 / m - mean * mean;
  std::printf("detector_noise: mean %.4f, variance %.4f, excess kurtosis %.3f, peak %.3f; "
              "correlation with n+1 %.4f, chunk+1 %.4f, other key %.4f\n", mean, var,
              s4 / m / (var * var) - 3.0, peak, correlation(x.data(), next_n.data(), count),
              correlation(x.data(), next_c.data(), count), correlation(x.data(), y.data(), count));
  EXPECT_NEAR(mean, 0.0, 5 / std::sqrt(m));
  EXPECT_NEAR(var, 1.0, 0.01);
  EXPECT_NEAR(s4 / m / (var * var) - 3.0, -0.3, 0.03);
  EXPECT_LE(peak, std::sqrt(12.0));
  EXPECT_GE(peak, 3.0);
  EXPECT_LT(std::abs(correlation(x.data(), next_n.data(), count)), 0.01);
  EXPECT_LT(std::abs(correlation(x.data(), next_c.data(), count)), 0.01);
  EXPECT_LT(std::abs(correlation(x.data(), y.data(), count)), 0.01);
  EXPECT_EQ(detector_noise(key, 77, 3, stride), detector_noise(key, 77, 3, stride));
}

}  // namespace
}  // namespace pfa::photonic

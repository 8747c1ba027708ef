// Shared by the CUDA kernel tests: one attention problem run on the GPU and compared with an
// fp64 reference. Fresh random inputs, output and LSE poisoned with NaN before the launch and
// checked fully written, padding between output rows checked untouched, relative error of the
// output and absolute error of the LSE (on a sample of rows when the problem is large).
#pragma once

#include <pfa/kernels/cuda/attention_cuda.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace pfa::cuda_test {

namespace kc = pfa::kernels::cuda;
using pfa::kernels::AttentionParams;
using pfa::kernels::DType;

// Empty when a CUDA device answers; otherwise why not.
inline std::string no_device_reason() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA device: ") + cudaGetErrorString(e);
  }
  if (n == 0) return "no CUDA device";
  return {};
}

// Compute capability of device 0 as major * 10 + minor.
inline int compute_capability() {
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0);
  return major * 10 + minor;
}

inline uint16_t to_bits(float x, DType dt) {
  uint16_t b;
  if (dt == DType::bf16) {
    const __nv_bfloat16 h = __float2bfloat16_rn(x);
    std::memcpy(&b, &h, 2);
  } else {
    const __half h = __float2half_rn(x);
    std::memcpy(&b, &h, 2);
  }
  return b;
}

inline float from_bits(uint16_t b, DType dt) {
  if (dt == DType::bf16) {
    __nv_bfloat16 h;
    std::memcpy(&h, &b, 2);
    return __bfloat162float(h);
  }
  __half h;
  std::memcpy(&h, &b, 2);
  return __half2float(h);
}

// Element strides (batch, seq, head) of a BSHD or BHSD tensor whose rows are `pad` elements
// further apart than dense; returns the element count to allocate.
inline int64_t strides_of(bool bhsd, int64_t batch, int64_t seq, int64_t heads, int64_t d,
                          int64_t pad, int64_t out[3]) {
  const int64_t row = d + pad;
  if (bhsd) {
    out[0] = heads * seq * row;
    out[1] = row;
    out[2] = seq * row;
  } else {
    out[0] = seq * heads * row;
    out[1] = heads * row;
    out[2] = row;
  }
  return batch * seq * heads * row;
}

struct DeviceBuffer {
  void* ptr = nullptr;
  explicit DeviceBuffer(size_t bytes) {
    if (cudaMalloc(&ptr, std::max<size_t>(bytes, 16)) != cudaSuccess) ptr = nullptr;
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

// One problem: shape, masking, dtype and memory layout.
struct Problem {
  int64_t batch, heads_q, heads_kv, seqlen_q, seqlen_k, head_dim;
  bool causal;
  DType dtype;
  bool bhsd = false;
  int64_t in_pad = 0;   // extra elements per q/k/v row step (a strided view; a multiple of 8)
  int64_t out_pad = 0;  // extra elements per output row step
  bool lse = true;      // ask for the LSE
};

struct Outcome {
  double rel_err = 0;
  double max_lse_err = 0;
  int64_t unwritten = 0;   // output elements of the problem left NaN (or not finite)
  int64_t clobbered = 0;   // padding elements between output rows that changed
  int64_t bad_lse = 0;     // LSE entries NaN or +inf, or written when none was asked for
  std::string path;
  std::string message;
  bool ok = false;
};

// Runs `c` through attention_forward with `opt` and compares with the fp64 reference.
inline Outcome run_against_reference(const Problem& c, const kc::LaunchOptions& opt,
                                     std::mt19937_64& rng) {
  Outcome res;
  const int64_t D = c.head_dim;
  AttentionParams p;
  p.batch = c.batch;
  p.heads_q = c.heads_q;
  p.heads_kv = c.heads_kv;
  p.seqlen_q = c.seqlen_q;
  p.seqlen_k = c.seqlen_k;
  p.head_dim = D;
  p.dtype = c.dtype;
  p.causal = c.causal;
  p.softmax_scale = float(1.0 / std::sqrt(double(D)));
  const int64_t nq = strides_of(c.bhsd, c.batch, c.seqlen_q, c.heads_q, D, c.in_pad, p.q_stride);
  const int64_t nk = strides_of(c.bhsd, c.batch, c.seqlen_k, c.heads_kv, D, c.in_pad, p.k_stride);
  strides_of(c.bhsd, c.batch, c.seqlen_k, c.heads_kv, D, c.in_pad, p.v_stride);
  const int64_t no = strides_of(c.bhsd, c.batch, c.seqlen_q, c.heads_q, D, c.out_pad, p.o_stride);

  std::vector<uint16_t> hq(nq), hk(nk), hv(nk);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (auto& x : hq) x = to_bits(normal(rng), c.dtype);
  for (auto& x : hk) x = to_bits(normal(rng), c.dtype);
  for (auto& x : hv) x = to_bits(normal(rng), c.dtype);

  DeviceBuffer dq(nq * 2), dk(nk * 2), dv(nk * 2), dout(no * 2);
  const int64_t nlse = c.batch * c.heads_q * c.seqlen_q;
  DeviceBuffer dlse(nlse * 4);
  EXPECT_TRUE(dq.ptr && dk.ptr && dv.ptr && dout.ptr && dlse.ptr) << "cudaMalloc failed";
  EXPECT_EQ(cudaMemcpy(dq.ptr, hq.data(), nq * 2, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(dk.ptr, hk.data(), nk * 2, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(dv.ptr, hv.data(), nk * 2, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemset(dout.ptr, 0xff, no * 2), cudaSuccess);    // NaN in fp16 and bf16
  EXPECT_EQ(cudaMemset(dlse.ptr, 0xff, nlse * 4), cudaSuccess);  // NaN in fp32
  p.q = dq.ptr;
  p.k = dk.ptr;
  p.v = dv.ptr;
  p.out = dout.ptr;
  p.lse = c.lse ? static_cast<float*>(dlse.ptr) : nullptr;

  const kc::LaunchResult r = kc::attention_forward(p, nullptr, opt);
  res.path = r.path;
  res.message = r.message;
  EXPECT_TRUE(r.ok()) << r.message;
  const cudaError_t sync = cudaDeviceSynchronize();
  EXPECT_EQ(sync, cudaSuccess) << cudaGetErrorString(sync);
  if (!r.ok() || sync != cudaSuccess) {
    res.rel_err = INFINITY;
    return res;
  }
  res.ok = true;
  std::vector<uint16_t> hout(no);
  std::vector<float> hlse(nlse);
  EXPECT_EQ(cudaMemcpy(hout.data(), dout.ptr, no * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(hlse.data(), dlse.ptr, nlse * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  // Every element of the problem written and finite; the padding between rows untouched.
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t i = 0; i < c.seqlen_q; ++i)
      for (int64_t h = 0; h < c.heads_q; ++h) {
        const uint16_t* row = hout.data() + b * p.o_stride[0] + i * p.o_stride[1] + h * p.o_stride[2];
        for (int64_t d = 0; d < D; ++d)
          if (!std::isfinite(from_bits(row[d], c.dtype))) ++res.unwritten;
        for (int64_t d = D; d < D + c.out_pad; ++d)
          if (row[d] != 0xffff) ++res.clobbered;
      }
  if (c.lse) {
    for (float x : hlse)
      if (std::isnan(x) || x == INFINITY) ++res.bad_lse;
  } else {
    for (float x : hlse)
      if (!std::isnan(x)) ++res.bad_lse;  // asked for none: nothing may be written
  }

  // Rows to check: all when small, else the first and last 130 and an even sample between.
  const double work = double(c.seqlen_q) * double(c.seqlen_k) * double(D);
  const int64_t step = std::max<int64_t>(1, int64_t(work / 3e7));
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < c.seqlen_q; ++i)
    if (i < 130 || i >= c.seqlen_q - 130 || i % step == 0) rows.push_back(i);

  const int64_t group = c.heads_q / c.heads_kv;
  const double scale = 1.0 / std::sqrt(double(D));
  const int64_t bh = c.batch * c.heads_q;
  std::vector<double> num(bh, 0), den(bh, 0), lse_err(bh, 0);
  auto work_on = [&](int64_t first, int64_t last) {
    std::vector<double> s(std::max<int64_t>(c.seqlen_k, 1)), o(D);
    for (int64_t x = first; x < last; ++x) {
      const int64_t b = x / c.heads_q, h = x % c.heads_q, hkv = h / group;
      for (int64_t i : rows) {
        const uint16_t* qi = hq.data() + b * p.q_stride[0] + i * p.q_stride[1] + h * p.q_stride[2];
        int64_t last_key = c.seqlen_k - 1;
        if (c.causal) last_key = std::min(last_key, i + c.seqlen_k - c.seqlen_q);
        double mx = -INFINITY;
        for (int64_t j = 0; j <= last_key; ++j) {
          const uint16_t* kj = hk.data() + b * p.k_stride[0] + j * p.k_stride[1] + hkv * p.k_stride[2];
          double acc = 0;
          for (int64_t d = 0; d < D; ++d)
            acc += double(from_bits(qi[d], c.dtype)) * from_bits(kj[d], c.dtype);
          s[j] = acc * scale;
          mx = std::max(mx, s[j]);
        }
        std::fill(o.begin(), o.end(), 0.0);
        double sum = 0;
        for (int64_t j = 0; j <= last_key; ++j) {
          const double e = std::exp(s[j] - mx);
          sum += e;
          const uint16_t* vj = hv.data() + b * p.v_stride[0] + j * p.v_stride[1] + hkv * p.v_stride[2];
          for (int64_t d = 0; d < D; ++d) o[d] += e * from_bits(vj[d], c.dtype);
        }
        const uint16_t* oi = hout.data() + b * p.o_stride[0] + i * p.o_stride[1] + h * p.o_stride[2];
        for (int64_t d = 0; d < D; ++d) {
          const double ref = sum > 0 ? o[d] / sum : 0.0;
          const double got = from_bits(oi[d], c.dtype);
          num[x] += (got - ref) * (got - ref);
          den[x] += ref * ref;
        }
        if (!c.lse) continue;
        const double ref_lse = sum > 0 ? mx + std::log(sum) : -INFINITY;
        const double got_lse = hlse[(b * c.heads_q + h) * c.seqlen_q + i];
        double err = 0;
        if (std::isinf(ref_lse)) err = (got_lse == ref_lse) ? 0 : INFINITY;
        else err = std::fabs(got_lse - ref_lse);
        if (std::isnan(got_lse)) err = INFINITY;
        lse_err[x] = std::max(lse_err[x], err);
      }
    }
  };
  const int64_t threads = std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, 16);
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < threads; ++t) {
    const int64_t a = bh * t / threads, b = bh * (t + 1) / threads;
    if (a < b) pool.emplace_back(work_on, a, b);
  }
  for (auto& t : pool) t.join();
  double n = 0, d = 0;
  for (int64_t x = 0; x < bh; ++x) {
    n += num[x];
    d += den[x];
    res.max_lse_err = std::max(res.max_lse_err, lse_err[x]);
  }
  res.rel_err = d > 0 ? std::sqrt(n / d) : std::sqrt(n);
  return res;
}

// About 2x the error of a same-dtype PyTorch attention on these inputs.
inline double tolerance(DType dt) { return dt == DType::bf16 ? 1e-2 : 2e-3; }

inline uint64_t fresh_seed() {
  return std::random_device{}() ^ (uint64_t(std::random_device{}()) << 32);
}

// The assertions every reference comparison makes; `name` labels the printed result line.
inline void expect_matches_reference(const std::string& name, DType dtype, const Outcome& o,
                                     uint64_t seed) {
  std::printf("[ result ] %-62s path=%-40s rel_err=%.3e lse_err=%.2e\n", name.c_str(),
              o.path.c_str(), o.rel_err, o.max_lse_err);
  EXPECT_EQ(o.unwritten, 0) << "output elements left unwritten or not finite (seed " << seed << ")";
  EXPECT_EQ(o.clobbered, 0) << "output padding between rows overwritten (seed " << seed << ")";
  EXPECT_EQ(o.bad_lse, 0) << "LSE entries NaN, +inf, or written when not asked (seed " << seed << ")";
  EXPECT_LT(o.rel_err, tolerance(dtype)) << "seed " << seed;
  EXPECT_LT(o.max_lse_err, 2e-3) << "seed " << seed;
}

}  // namespace pfa::cuda_test

// Tests of the sm_80 path of kernels/cuda (the mma.sync kernel, fa2_sm80.cuh) against an fp64
// reference: fresh random inputs every run, the output and LSE poisoned with NaN before each
// launch and checked fully written, relative error per dtype. Path::sm80 is forced, so the kernel
// runs on any GPU of compute capability 8.0 or newer (an H100 included). Without a CUDA device
// every GPU test skips with the reason; the capability answers are checked everywhere.
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
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace kc = pfa::kernels::cuda;
using pfa::kernels::AttentionParams;
using pfa::kernels::DType;

// Empty when a CUDA device of compute capability 8.0 or newer answers; otherwise why not.
std::string no_device_reason() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA device: ") + cudaGetErrorString(e);
  }
  if (n == 0) return "no CUDA device";
  int major = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  if (major < 8) return "the sm80 kernel needs compute capability 8.0 or newer";
  return {};
}

int compute_capability() {
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0);
  return major * 10 + minor;
}

uint16_t to_bits(float x, DType dt) {
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

float from_bits(uint16_t b, DType dt) {
  if (dt == DType::bf16) {
    __nv_bfloat16 h;
    std::memcpy(&h, &b, 2);
    return __bfloat162float(h);
  }
  __half h;
  std::memcpy(&h, &b, 2);
  return __half2float(h);
}

struct Case {
  int64_t batch, heads_q, heads_kv, seqlen_q, seqlen_k, head_dim;
  bool causal;
  DType dtype;
  bool bhsd = false;
  int64_t in_pad = 0;   // extra elements per q/k/v row step (a strided view; a multiple of 8)
  int64_t out_pad = 0;  // extra elements per output row step (any count: 2-byte stores)
  bool lse = true;      // ask for the LSE
  kc::Path path = kc::Path::sm80;

  std::string name() const {
    std::ostringstream s;
    s << (path == kc::Path::sm80 ? "sm80" : "auto") << "_b" << batch << "_h" << heads_q << "x"
      << heads_kv << "_q" << seqlen_q << "_k" << seqlen_k << "_d" << head_dim
      << (causal ? "_causal" : "") << (dtype == DType::bf16 ? "_bf16" : "_fp16")
      << (bhsd ? "_bhsd" : "_bshd");
    if (in_pad) s << "_inpad" << in_pad;
    if (out_pad) s << "_outpad" << out_pad;
    if (!lse) s << "_nolse";
    return s.str();
  }
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name(); }

// Element strides (batch, seq, head) of a BSHD or BHSD tensor whose rows are `pad` elements
// further apart than dense; returns the element count to allocate.
int64_t strides_of(bool bhsd, int64_t batch, int64_t seq, int64_t heads, int64_t d, int64_t pad,
                   int64_t out[3]) {
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

struct Outcome {
  double rel_err = 0;
  double max_lse_err = 0;
  int64_t unwritten = 0;   // output elements of the problem left NaN (or not finite)
  int64_t clobbered = 0;   // padding elements between output rows that changed
  int64_t bad_lse = 0;
  std::string path;
  std::string message;
  bool ok = false;
};

Outcome run_case(const Case& c, std::mt19937_64& rng) {
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

  kc::LaunchOptions opt;
  opt.path = c.path;
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

// About 2x the error of a same-dtype PyTorch attention on these inputs (as cuda_attention_test).
double tolerance(DType dt) { return dt == DType::bf16 ? 1e-2 : 2e-3; }

uint64_t fresh_seed() { return std::random_device{}() ^ (uint64_t(std::random_device{}()) << 32); }

void check(const Case& c, const Outcome& o, uint64_t seed) {
  std::printf("[ result ] %-62s path=%-16s rel_err=%.3e lse_err=%.2e\n", c.name().c_str(),
              o.path.c_str(), o.rel_err, o.max_lse_err);
  EXPECT_EQ(o.unwritten, 0) << "output elements left unwritten or not finite (seed " << seed << ")";
  EXPECT_EQ(o.clobbered, 0) << "output padding between rows overwritten (seed " << seed << ")";
  EXPECT_EQ(o.bad_lse, 0) << "LSE entries NaN, +inf, or written when not asked (seed " << seed << ")";
  EXPECT_LT(o.rel_err, tolerance(c.dtype)) << "seed " << seed;
  EXPECT_LT(o.max_lse_err, 2e-3) << "seed " << seed;
}

class Sm80Attention : public ::testing::TestWithParam<Case> {};

TEST_P(Sm80Attention, MatchesFp64Reference) {
  const std::string why = no_device_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  const Case& c = GetParam();
  const uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  const Outcome o = run_case(c, rng);
  check(c, o, seed);
  if (o.ok) {
    // The kernel that ran is named by the head dim it was compiled for (the next compiled one
    // at or above the problem's).
    EXPECT_EQ(o.path.rfind("sm80_d", 0), 0u) << o.path;
    EXPECT_NE(o.path.find(c.dtype == DType::bf16 ? "_bf16" : "_f16"), std::string::npos) << o.path;
  }
}

constexpr int64_t kDims[] = {64, 96, 128, 160, 192, 256};

std::vector<Case> all_cases() {
  std::vector<Case> v;
  const DType dts[] = {DType::bf16, DType::fp16};
  // Every compiled head dim and dtype over ragged lengths, causal and not.
  for (int64_t d : kDims)
    for (DType dt : dts)
      for (int64_t L : {1, 17, 127, 1000, 4097})
        for (bool causal : {false, true}) v.push_back({1, 2, 2, L, L, d, causal, dt});
  // Lq != Lk causal both ways (bottom-right; rows that see no key), GQA 8:1 and 4:1 (K/V by head
  // index), BHSD, batches, padded q/k/v rows, odd output rows (2-byte stores), no LSE.
  for (int64_t d : kDims)
    for (DType dt : dts) {
      v.push_back({1, 2, 2, 100, 1000, d, true, dt});
      v.push_back({1, 2, 2, 1000, 100, d, true, dt});
      v.push_back({1, 2, 2, 17, 4097, d, true, dt});
      v.push_back({1, 2, 2, 300, 77, d, false, dt});
      v.push_back({2, 16, 2, 300, 300, d, true, dt});
      v.push_back({2, 8, 1, 257, 513, d, false, dt, true});
      v.push_back({3, 4, 4, 1000, 1000, d, true, dt, true});
      v.push_back({2, 4, 2, 200, 333, d, true, dt, false, 8, 3});
      v.push_back({1, 3, 1, 129, 65, d, false, dt, true, 16, 1, false});
    }
  // Head dims between the compiled ones run on the next one with zero-filled columns.
  for (int64_t d : {8, 40, 80, 136, 200, 248})
    for (DType dt : dts) {
      v.push_back({1, 2, 1, 127, 300, d, true, dt});
      v.push_back({2, 2, 2, 65, 65, d, false, dt, true});
    }
  // No keys at all: every row empty (zeros, LSE -inf).
  v.push_back({1, 2, 2, 5, 0, 128, false, DType::bf16});
  v.push_back({1, 2, 2, 5, 0, 64, true, DType::fp16});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Shapes, Sm80Attention, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name(); });

// Automatic dispatch: the sm_90a kernel where it applies, else the sm80 kernel, else the
// fallback. Head dim 160 has no sm_90a kernel, so on Hopper it goes to sm80 too; on cc 8.x every
// served shape does.
TEST(Sm80Dispatch, AutomaticPicksTheSm80Kernel) {
  const std::string why = no_device_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  const int cc = compute_capability();
  struct Want {
    int64_t d;
    const char* path;
  };
  std::vector<Want> wants = {{160, "sm80_d160_bf16"}, {80, "sm80_d96_bf16"}, {40, "sm80_d64_bf16"}};
  if (cc / 10 == 8) wants.push_back({128, "sm80_d128_bf16"});
  for (const Want& w : wants) {
    Case c{2, 4, 2, 300, 500, w.d, true, DType::bf16};
    c.path = kc::Path::automatic;
    const uint64_t seed = fresh_seed();
    std::mt19937_64 rng(seed);
    const Outcome o = run_case(c, rng);
    check(c, o, seed);
    EXPECT_EQ(o.path, w.path) << "head dim " << w.d << " on cc " << cc;
  }
}

// A misaligned base pointer: automatic falls back to the simple kernel, a forced sm80 is refused
// with the reason, and the refusal launches nothing.
TEST(Sm80Dispatch, MisalignedPointersFallBackOrAreRefused) {
  const std::string why = no_device_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  const int64_t L = 64, D = 64, H = 2;
  DeviceBuffer q(L * H * D * 2 + 16), k(L * H * D * 2), v(L * H * D * 2), o(L * H * D * 2);
  ASSERT_TRUE(q.ptr && k.ptr && v.ptr && o.ptr);
  cudaMemset(q.ptr, 0, L * H * D * 2 + 16);
  cudaMemset(k.ptr, 0, L * H * D * 2);
  cudaMemset(v.ptr, 0, L * H * D * 2);
  AttentionParams p;
  p.batch = 1;
  p.heads_q = p.heads_kv = H;
  p.seqlen_q = p.seqlen_k = L;
  p.head_dim = D;
  p.dtype = DType::fp16;
  p.softmax_scale = 0.125f;
  strides_of(false, 1, L, H, D, 0, p.q_stride);
  strides_of(false, 1, L, H, D, 0, p.k_stride);
  strides_of(false, 1, L, H, D, 0, p.v_stride);
  strides_of(false, 1, L, H, D, 0, p.o_stride);
  p.q = static_cast<const char*>(q.ptr) + 2;  // 2-byte aligned only
  p.k = k.ptr;
  p.v = v.ptr;
  p.out = o.ptr;
  kc::LaunchOptions opt;
  opt.path = kc::Path::sm80;
  kc::LaunchResult r = kc::attention_forward(p, nullptr, opt);
  EXPECT_EQ(r.status, kc::LaunchStatus::unsupported);
  EXPECT_NE(r.message.find("16-byte"), std::string::npos) << r.message;
  opt.path = kc::Path::automatic;
  r = kc::attention_forward(p, nullptr, opt);
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_STREQ(r.path, "fallback");
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

// Capability answers need no device.
TEST(Sm80Support, ReasonsWithoutTouchingTheDevice) {
  AttentionParams p;
  p.batch = 1;
  p.heads_q = 8;
  p.heads_kv = 2;
  p.seqlen_q = p.seqlen_k = 1000;
  p.head_dim = 128;
  p.dtype = DType::bf16;
  p.softmax_scale = 0.088f;
  auto set_strides = [&](int64_t pad) {
    strides_of(false, 1, p.seqlen_q, p.heads_q, p.head_dim, pad, p.q_stride);
    strides_of(false, 1, p.seqlen_k, p.heads_kv, p.head_dim, pad, p.k_stride);
    strides_of(false, 1, p.seqlen_k, p.heads_kv, p.head_dim, pad, p.v_stride);
    strides_of(false, 1, p.seqlen_q, p.heads_q, p.head_dim, 0, p.o_stride);
  };
  set_strides(0);
  const auto sm80 = [&](int major, int minor) {
    return kc::unsupported_reason(p, major, minor, kc::Path::sm80);
  };
  // Served on Ampere (8.0, 8.6), Ada (8.9) and Hopper (9.0), for every compiled head dim and the
  // multiples of 8 between them.
  for (int64_t d : {8, 40, 64, 80, 96, 128, 136, 160, 192, 200, 256}) {
    p.head_dim = d;
    set_strides(0);
    for (int cc : {80, 86, 89, 90}) EXPECT_EQ(sm80(cc / 10, cc % 10), "") << "d=" << d << " cc=" << cc;
  }
  p.head_dim = 160;
  set_strides(0);
  // On Hopper the sm_90a kernel doesn't take head dim 160, so automatic gets the sm80 kernel.
  EXPECT_NE(kc::unsupported_reason(p, 9, 0, kc::Path::sm90), "");
  EXPECT_EQ(kc::unsupported_reason(p, 9, 0, kc::Path::automatic), "");
  p.head_dim = 128;
  set_strides(0);
  EXPECT_EQ(kc::unsupported_reason(p, 8, 6, kc::Path::automatic), "");
  EXPECT_NE(kc::unsupported_reason(p, 8, 0, kc::Path::sm90), "");
  // Too old a device.
  EXPECT_NE(sm80(7, 5).find("8.0"), std::string::npos) << sm80(7, 5);
  // fp32.
  p.dtype = DType::fp32;
  EXPECT_NE(sm80(8, 0), "");
  p.dtype = DType::bf16;
  // A head dim that is not a multiple of 8: the reason says so and names the fallback.
  p.head_dim = 100;
  set_strides(0);
  std::string why = sm80(8, 0);
  EXPECT_NE(why.find("multiple of 8"), std::string::npos) << why;
  EXPECT_NE(why.find("fallback"), std::string::npos) << why;
  EXPECT_EQ(kc::unsupported_reason(p, 8, 0, kc::Path::automatic), "");  // the fallback serves it
  // Past 256.
  p.head_dim = 264;
  set_strides(0);
  EXPECT_NE(sm80(8, 0), "");
  // Rows that are not 16-byte steps (cp.async).
  p.head_dim = 128;
  set_strides(4);
  why = sm80(8, 0);
  EXPECT_NE(why.find("16-byte"), std::string::npos) << why;
  set_strides(8);
  EXPECT_EQ(sm80(8, 0), "");
  // Output strides may be anything (2-byte stores).
  p.o_stride[1] += 3;
  EXPECT_EQ(sm80(8, 0), "");
  // GQA needs heads_q a multiple of heads_kv.
  p.heads_kv = 3;
  set_strides(0);
  EXPECT_NE(sm80(8, 0), "");
  p.heads_kv = 2;
  set_strides(0);
  // The scale is folded into exp2 after the row max: it must be positive.
  p.softmax_scale = 0.f;
  EXPECT_NE(sm80(8, 0), "");
  p.softmax_scale = 0.088f;
  // Sequences past 2^30.
  p.seqlen_k = (int64_t(1) << 30) + 1;
  EXPECT_NE(sm80(8, 0), "");
}

}  // namespace

// Tests of the CUDA attention kernels (kernels/cuda) and the cuda_fa3 plugin against an fp64
// reference: fresh random inputs every run, the output poisoned with NaN before each launch and
// checked fully written, relative error per dtype, the log-sum-exp checked too. Without a CUDA
// device every GPU test skips with the reason; the plugin must still load and say why not.
#include <pfa/kernels/cuda/attention_cuda.h>
#include <pfa/plugin_abi.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
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

// Empty when a CUDA device answers; otherwise why not.
std::string no_device_reason() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA device: ") + cudaGetErrorString(e);
  }
  if (n == 0) return "no CUDA device";
  return {};
}

bool is_hopper() {
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0);
  return major == 9 && minor == 0;
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
  bool bhsd;
  kc::Path path;
  int variant;  // sm90 variant, -1 = default
  int persistent = -1;  // sm90: -1 chosen by shape, 0 one CTA per tile, 1 one CTA per SM

  std::string name() const {
    std::ostringstream s;
    s << (path == kc::Path::fallback ? "fallback" : path == kc::Path::sm90 ? "sm90" : "auto");
    if (variant >= 0) s << "_v" << variant;
    if (persistent >= 0) s << (persistent == 2 ? "_lpt" : persistent ? "_persistent" : "_grid");
    s << "_b" << batch << "_h" << heads_q << "x" << heads_kv << "_q" << seqlen_q << "_k" << seqlen_k
      << "_d" << head_dim << (causal ? "_causal" : "") << (dtype == DType::bf16 ? "_bf16" : "_fp16")
      << (bhsd ? "_bhsd" : "_bshd");
    return s.str();
  }
};

// Lets GoogleTest (and ctest's case list) show a case by its name rather than its bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name(); }

// Element strides (batch, seq, head) of a contiguous BSHD or BHSD tensor.
void strides_of(bool bhsd, int64_t seq, int64_t heads, int64_t d, int64_t out[3]) {
  if (bhsd) {
    out[0] = heads * seq * d;
    out[1] = d;
    out[2] = seq * d;
  } else {
    out[0] = seq * heads * d;
    out[1] = heads * d;
    out[2] = d;
  }
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
  int64_t unwritten = 0;
  int64_t bad_lse = 0;
  std::string path;
};

// Runs one case on the GPU and compares with the fp64 reference (on a sample of rows when the
// problem is large; the fully-written check covers every element).
Outcome run_case(const Case& c, std::mt19937_64& rng) {
  Outcome res;
  const int64_t D = c.head_dim;
  const int64_t nq = c.batch * c.seqlen_q * c.heads_q * D;
  const int64_t nk = c.batch * c.seqlen_k * c.heads_kv * D;
  std::vector<uint16_t> hq(nq), hk(nk), hv(nk);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (auto& x : hq) x = to_bits(normal(rng), c.dtype);
  for (auto& x : hk) x = to_bits(normal(rng), c.dtype);
  for (auto& x : hv) x = to_bits(normal(rng), c.dtype);

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
  strides_of(c.bhsd, c.seqlen_q, c.heads_q, D, p.q_stride);
  strides_of(c.bhsd, c.seqlen_k, c.heads_kv, D, p.k_stride);
  strides_of(c.bhsd, c.seqlen_k, c.heads_kv, D, p.v_stride);
  strides_of(c.bhsd, c.seqlen_q, c.heads_q, D, p.o_stride);

  DeviceBuffer dq(nq * 2), dk(nk * 2), dv(nk * 2), dout(nq * 2);
  const int64_t nlse = c.batch * c.heads_q * c.seqlen_q;
  DeviceBuffer dlse(nlse * 4);
  EXPECT_TRUE(dq.ptr && dk.ptr && dv.ptr && dout.ptr && dlse.ptr) << "cudaMalloc failed";
  // The host arrays are in the case's own memory layout: index through the strides.
  EXPECT_EQ(cudaMemcpy(dq.ptr, hq.data(), nq * 2, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(dk.ptr, hk.data(), nk * 2, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(dv.ptr, hv.data(), nk * 2, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemset(dout.ptr, 0xff, nq * 2), cudaSuccess);   // NaN in fp16 and bf16
  EXPECT_EQ(cudaMemset(dlse.ptr, 0xff, nlse * 4), cudaSuccess);  // NaN in fp32
  p.q = dq.ptr;
  p.k = dk.ptr;
  p.v = dv.ptr;
  p.out = dout.ptr;
  p.lse = static_cast<float*>(dlse.ptr);

  kc::LaunchOptions opt;
  opt.path = c.path;
  opt.sm90_variant = c.variant;
  opt.persistent = c.persistent;
  const kc::LaunchResult r = kc::attention_forward(p, nullptr, opt);
  res.path = r.path;
  EXPECT_TRUE(r.ok()) << r.message;
  const cudaError_t sync = cudaDeviceSynchronize();
  EXPECT_EQ(sync, cudaSuccess) << cudaGetErrorString(sync);
  if (!r.ok() || sync != cudaSuccess) {
    res.rel_err = INFINITY;
    return res;
  }
  std::vector<uint16_t> hout(nq);
  std::vector<float> hlse(nlse);
  EXPECT_EQ(cudaMemcpy(hout.data(), dout.ptr, nq * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(hlse.data(), dlse.ptr, nlse * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  for (uint16_t b : hout)
    if (!std::isfinite(from_bits(b, c.dtype))) ++res.unwritten;
  for (float x : hlse)
    if (std::isnan(x) || x == INFINITY) ++res.bad_lse;

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
    std::vector<double> s(c.seqlen_k), o(D);
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
          for (int64_t d = 0; d < D; ++d) acc += double(from_bits(qi[d], c.dtype)) * from_bits(kj[d], c.dtype);
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
double tolerance(DType dt) { return dt == DType::bf16 ? 1e-2 : 2e-3; }

class CudaAttention : public ::testing::TestWithParam<Case> {};

TEST_P(CudaAttention, MatchesFp64Reference) {
  const std::string why = no_device_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  const Case& c = GetParam();
  if (c.path == kc::Path::sm90 && !is_hopper()) GTEST_SKIP() << "not a Hopper GPU (sm_90)";
  if (c.path == kc::Path::sm90 &&
      kc::sm90_variant_name(int(c.head_dim), c.dtype == DType::bf16,
                            c.variant < 0 ? kc::sm90_default_variant(int(c.head_dim)) : c.variant) ==
          "not compiled")
    GTEST_SKIP() << "head dim " << c.head_dim << " not compiled in this build (PFA_FA3_HEAD_DIMS)";
  const uint64_t seed = std::random_device{}() ^ (uint64_t(std::random_device{}()) << 32);
  std::mt19937_64 rng(seed);
  const Outcome o = run_case(c, rng);
  const double tol = tolerance(c.dtype);
  std::printf("[ result ] %-60s path=%-40s rel_err=%.3e lse_err=%.2e\n", c.name().c_str(),
              o.path.c_str(), o.rel_err, o.max_lse_err);
  EXPECT_EQ(o.unwritten, 0) << "output elements left unwritten or not finite (seed " << seed << ")";
  EXPECT_EQ(o.bad_lse, 0) << "LSE entries NaN or +inf (seed " << seed << ")";
  EXPECT_LT(o.rel_err, tol) << "seed " << seed;
  EXPECT_LT(o.max_lse_err, 2e-3) << "seed " << seed;
}

std::vector<Case> all_cases() {
  std::vector<Case> v;
  const DType dts[] = {DType::bf16, DType::fp16};
  // Every sm_90a head dim and dtype over the ragged lengths, causal and not (default variant).
  for (int64_t d : {64, 96, 128, 192, 256})
    for (DType dt : dts)
      for (int64_t L : {1, 17, 127, 1000, 4097})
        for (bool causal : {false, true})
          v.push_back({1, 2, 2, L, L, d, causal, dt, false, kc::Path::sm90, -1});
  // Lq != Lk with causal (bottom-right; rows that see no key), GQA 8:1, BHSD, batches.
  for (int64_t d : {64, 96, 128, 192, 256})
    for (DType dt : dts) {
      v.push_back({1, 2, 2, 100, 1000, d, true, dt, false, kc::Path::sm90, -1});
      v.push_back({1, 2, 2, 1000, 100, d, true, dt, false, kc::Path::sm90, -1});
      v.push_back({1, 2, 2, 17, 4097, d, true, dt, false, kc::Path::sm90, -1});
      v.push_back({2, 16, 2, 300, 300, d, true, dt, false, kc::Path::sm90, -1});
      v.push_back({2, 8, 1, 257, 513, d, false, dt, true, kc::Path::sm90, -1});
      v.push_back({3, 4, 4, 1000, 1000, d, true, dt, true, kc::Path::sm90, -1});
    }
  // Every compiled variant on a few shapes.
  for (int var = 0; var < kc::sm90_variant_count(); ++var)
    for (int64_t d : {64, 96, 128, 192, 256})
      for (DType dt : dts) {
        v.push_back({1, 2, 2, 1000, 1000, d, true, dt, false, kc::Path::sm90, var});
        v.push_back({2, 4, 2, 700, 1500, d, false, dt, true, kc::Path::sm90, var});
        v.push_back({1, 2, 1, 333, 77, d, true, dt, false, kc::Path::sm90, var});
      }
  // Persistent (one CTA per SM walking many tiles, some with no visible key) and one-CTA-per-tile
  // launches of every variant.
  for (int var = 0; var < kc::sm90_variant_count(); ++var)
    for (int64_t d : {64, 128, 256})
      for (int pers : {0, 1, 2}) {
        v.push_back({2, 16, 4, 1000, 1000, d, true, DType::bf16, false, kc::Path::sm90, var, pers});
        v.push_back({3, 16, 2, 900, 300, d, true, DType::fp16, true, kc::Path::sm90, var, pers});
        v.push_back({2, 32, 32, 513, 513, d, false, DType::bf16, false, kc::Path::sm90, var, pers});
      }
  // Head dims 96 (64-byte swizzle) and 192 walked persistently, once per variant.
  for (int var = 0; var < kc::sm90_variant_count(); ++var)
    for (int64_t d : {96, 192})
      v.push_back({2, 16, 4, 1000, 1000, d, true, DType::bf16, false, kc::Path::sm90, var, 1});
  // The fallback kernel, including head dims the sm_90a kernel doesn't serve.
  for (int64_t d : {40, 64, 96, 128, 256})
    for (DType dt : dts) {
      v.push_back({1, 2, 2, 127, 127, d, true, dt, false, kc::Path::fallback, -1});
      v.push_back({2, 8, 2, 300, 1000, d, true, dt, true, kc::Path::fallback, -1});
      v.push_back({1, 2, 1, 1000, 100, d, false, dt, false, kc::Path::fallback, -1});
    }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaAttention, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name(); });

TEST(CudaAttentionSupport, ReasonsWithoutTouchingTheDevice) {
  AttentionParams p;
  p.batch = 1;
  p.heads_q = 2;
  p.heads_kv = 2;
  p.seqlen_q = p.seqlen_k = 128;
  p.head_dim = 128;
  p.dtype = DType::fp32;
  p.softmax_scale = 0.1f;
  EXPECT_NE(kc::unsupported_reason(p, 9, 0), "");
  p.dtype = DType::bf16;
  strides_of(false, 128, 2, 128, p.q_stride);
  strides_of(false, 128, 2, 128, p.k_stride);
  strides_of(false, 128, 2, 128, p.v_stride);
  strides_of(false, 128, 2, 128, p.o_stride);
  EXPECT_EQ(kc::unsupported_reason(p, 9, 0, kc::Path::sm90), "");
  EXPECT_NE(kc::unsupported_reason(p, 8, 0, kc::Path::sm90), "");
  EXPECT_EQ(kc::unsupported_reason(p, 8, 0, kc::Path::automatic), "");
  p.head_dim = 96;
  EXPECT_EQ(kc::unsupported_reason(p, 9, 0, kc::Path::sm90), "");
  p.head_dim = 80;
  EXPECT_NE(kc::unsupported_reason(p, 9, 0, kc::Path::sm90), "");
  p.head_dim = 300;
  EXPECT_NE(kc::unsupported_reason(p, 9, 0), "");
}

// ---- the plugin --------------------------------------------------------------------------
struct Plugin {
  void* handle = nullptr;
  const pfa_plugin_api* api = nullptr;
  pfa_context* context = nullptr;
  std::string error;
  Plugin() {
    handle = dlopen(PFA_CUDA_FA3_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      error = dlerror();
      return;
    }
    auto entry = reinterpret_cast<pfa_plugin_entry_fn>(dlsym(handle, PFA_PLUGIN_ENTRY_SYMBOL));
    if (entry == nullptr) {
      error = "no entry symbol";
      return;
    }
    pfa_host_info host{sizeof(pfa_host_info), PFA_ABI_VERSION_MAJOR, PFA_ABI_VERSION_MINOR, "test"};
    char msg[256] = {};
    if (entry(&host, &api, msg, sizeof msg) != PFA_STATUS_OK) {
      error = msg;
      return;
    }
    if (api->create(&host, &context, msg, sizeof msg) != PFA_STATUS_OK) error = msg;
  }
  ~Plugin() {
    if (api != nullptr && context != nullptr) api->destroy(context);
    // Not dlclose'd: the CUDA runtime it pulled in may still hold state.
  }
};

pfa_problem problem_of(int64_t L, int64_t D, int32_t dtype, bool causal) {
  pfa_problem p{};
  p.struct_size = sizeof p;
  p.batch = 2;
  p.heads_q = 4;
  p.heads_kv = 2;
  p.seqlen_q = p.seqlen_k = L;
  p.head_dim = D;
  p.dtype = dtype;
  p.layout = PFA_LAYOUT_BSHD;
  p.causal = causal;
  p.want_lse = 1;
  p.softmax_scale = float(1.0 / std::sqrt(double(D)));
  p.device_type = kDLCUDA;
  p.device_id = 0;
  return p;
}

TEST(CudaFa3Plugin, LoadsAndAnswersEverywhere) {
  Plugin pl;
  ASSERT_TRUE(pl.error.empty()) << pl.error;
  EXPECT_STREQ(pl.api->name, "cuda_fa3");
  EXPECT_EQ(pl.api->device_types, 1u << kDLCUDA);
  pfa_problem p = problem_of(1024, 128, PFA_DTYPE_BF16, true);
  char reason[256] = {};
  const pfa_status st = pl.api->supports(pl.context, &p, reason, sizeof reason);
  const std::string why = no_device_reason();
  if (!why.empty()) {
    EXPECT_EQ(st, PFA_STATUS_UNSUPPORTED);
    EXPECT_NE(std::string(reason).find("no CUDA device"), std::string::npos) << reason;
  }
  pfa_estimate est{sizeof(pfa_estimate), 0, 0, 0};
  EXPECT_EQ(pl.api->estimate(pl.context, &p, &est, reason, sizeof reason), PFA_STATUS_OK);
  EXPECT_GT(est.latency_s, 0);
  p.dtype = PFA_DTYPE_FP32;
  EXPECT_EQ(pl.api->supports(pl.context, &p, reason, sizeof reason), PFA_STATUS_UNSUPPORTED);
  p.device_type = kDLCPU;
  EXPECT_EQ(pl.api->supports(pl.context, &p, reason, sizeof reason), PFA_STATUS_UNSUPPORTED);
}

TEST(CudaFa3Plugin, RunsThroughTheAbi) {
  const std::string why = no_device_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  Plugin pl;
  ASSERT_TRUE(pl.error.empty()) << pl.error;
  pfa_device_info info{};
  info.struct_size = sizeof info;
  char msg[256] = {};
  ASSERT_EQ(pl.api->device_info(pl.context, kDLCUDA, 0, &info, msg, sizeof msg), PFA_STATUS_OK) << msg;
  std::printf("[ device ] %s | %s\n", info.name, info.detail);
  pfa_problem p = problem_of(300, 128, PFA_DTYPE_BF16, true);
  if (pl.api->supports(pl.context, &p, msg, sizeof msg) != PFA_STATUS_OK)
    GTEST_SKIP() << "plugin does not serve it here: " << msg;
  const int64_t nq = p.batch * p.seqlen_q * p.heads_q * p.head_dim;
  const int64_t nk = p.batch * p.seqlen_k * p.heads_kv * p.head_dim;
  std::mt19937_64 rng(std::random_device{}());
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<uint16_t> hq(nq), hk(nk), hv(nk);
  for (auto& x : hq) x = to_bits(normal(rng), DType::bf16);
  for (auto& x : hk) x = to_bits(normal(rng), DType::bf16);
  for (auto& x : hv) x = to_bits(normal(rng), DType::bf16);
  DeviceBuffer dq(nq * 2), dk(nk * 2), dv(nk * 2), dout(nq * 2), dlse(p.batch * p.heads_q * p.seqlen_q * 4);
  cudaMemcpy(dq.ptr, hq.data(), nq * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(dk.ptr, hk.data(), nk * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(dv.ptr, hv.data(), nk * 2, cudaMemcpyHostToDevice);
  cudaMemset(dout.ptr, 0xff, nq * 2);
  int64_t qshape[4] = {p.batch, p.seqlen_q, p.heads_q, p.head_dim};
  int64_t kshape[4] = {p.batch, p.seqlen_k, p.heads_kv, p.head_dim};
  int64_t qstr[4] = {p.seqlen_q * p.heads_q * p.head_dim, p.heads_q * p.head_dim, p.head_dim, 1};
  int64_t kstr[4] = {p.seqlen_k * p.heads_kv * p.head_dim, p.heads_kv * p.head_dim, p.head_dim, 1};
  int64_t lshape[3] = {p.batch, p.heads_q, p.seqlen_q};
  int64_t lstr[3] = {p.heads_q * p.seqlen_q, p.seqlen_q, 1};
  const DLDevice dev{kDLCUDA, 0};
  const DLDataType bf16{kDLBfloat, 16, 1}, f32{kDLFloat, 32, 1};
  DLTensor tq{dq.ptr, dev, 4, bf16, qshape, qstr, 0}, tk{dk.ptr, dev, 4, bf16, kshape, kstr, 0},
      tv{dv.ptr, dev, 4, bf16, kshape, kstr, 0}, to{dout.ptr, dev, 4, bf16, qshape, qstr, 0},
      tl{dlse.ptr, dev, 3, f32, lshape, lstr, 0};
  pfa_run_args args{sizeof(pfa_run_args), &p, &tq, &tk, &tv, &to, &tl, nullptr};
  pfa_run_result result{};
  result.struct_size = sizeof result;
  ASSERT_EQ(pl.api->run(pl.context, &args, &result, msg, sizeof msg), PFA_STATUS_OK) << msg;
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::printf("[ plugin ] ran %s\n", result.detail);
  std::vector<uint16_t> hout(nq);
  cudaMemcpy(hout.data(), dout.ptr, nq * 2, cudaMemcpyDeviceToHost);
  int64_t unwritten = 0;
  for (uint16_t b : hout)
    if (!std::isfinite(from_bits(b, DType::bf16))) ++unwritten;
  EXPECT_EQ(unwritten, 0);
}

}  // namespace

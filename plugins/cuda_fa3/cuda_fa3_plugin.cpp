// cuda_fa3: FlashAttention-3-style forward attention on NVIDIA GPUs behind the pfa plugin ABI.
// The compute lives in kernels/cuda; this file answers the host's questions and maps the ABI's
// tensors onto AttentionParams. Never synchronises the caller's stream; a CUDA error comes back
// as PFA_STATUS_DEVICE_ERROR with the CUDA error text.
#include <plugin_support.h>

#include <pfa/kernels/cuda/attention_cuda.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <string>
#include <vector>

namespace pfa::cuda_fa3 {
namespace {

using plugin::fail;
using plugin::write_message;
namespace kc = kernels::cuda;

// Head dims and dtypes whose sm_90a kernel passed the GPU tests (tests/kernels_cuda) on an H100;
// see bench/gpu/NOTES.md. Anything else on Hopper goes to the fallback kernel only if that was
// verified too.
struct Verified {
  int head_dim;
  kernels::DType dtype;
};
constexpr Verified kVerifiedSm90[] = {
    {64, kernels::DType::bf16},  {64, kernels::DType::fp16},  {96, kernels::DType::bf16},
    {96, kernels::DType::fp16},  {128, kernels::DType::bf16}, {128, kernels::DType::fp16},
    {192, kernels::DType::bf16}, {192, kernels::DType::fp16}, {256, kernels::DType::bf16},
    {256, kernels::DType::fp16}};
// The mma.sync kernel (head dims 8..256 in steps of 8) and the simple fallback (1..256), fp16 and
// bf16, both verified on an H100 by forcing them; no Ampere or Ada card has run them yet.
constexpr bool kFallbackVerified = true;

bool sm90_verified(int64_t d, int32_t dtype) {
  for (const Verified& v : kVerifiedSm90)
    if (v.head_dim == d && int32_t(v.dtype) == dtype) return true;
  return false;
}

struct Context {
  int devices = 0;
  std::string no_device;   // why there is no usable device, when devices == 0
  std::vector<int> cc;     // compute capability per device, major * 10 + minor
};

Context& ctx(pfa_context* c) { return *reinterpret_cast<Context*>(c); }

// Shape-only params (no pointers) in the layout the problem names, for the capability checks.
kernels::AttentionParams shape_params(const pfa_problem& p) {
  kernels::AttentionParams a;
  a.batch = p.batch;
  a.heads_q = p.heads_q;
  a.heads_kv = p.heads_kv;
  a.seqlen_q = p.seqlen_q;
  a.seqlen_k = p.seqlen_k;
  a.head_dim = p.head_dim;
  a.dtype = plugin::to_kernel_dtype(p.dtype);
  a.causal = p.causal != 0;
  a.softmax_scale = p.softmax_scale;
  auto fill = [&](int64_t* s, int64_t seq, int64_t heads) {
    if (p.layout == PFA_LAYOUT_BHSD) {
      s[0] = heads * seq * p.head_dim;
      s[1] = p.head_dim;
      s[2] = seq * p.head_dim;
    } else {  // BSHD, and the best guess for a strided view
      s[0] = seq * heads * p.head_dim;
      s[1] = heads * p.head_dim;
      s[2] = p.head_dim;
    }
  };
  fill(a.q_stride, p.seqlen_q, p.heads_q);
  fill(a.k_stride, p.seqlen_k, p.heads_kv);
  fill(a.v_stride, p.seqlen_k, p.heads_kv);
  fill(a.o_stride, p.seqlen_q, p.heads_q);
  return a;
}

// Query-key pairs that are computed: bottom-right causal keeps j <= i + Lk - Lq.
double visible_pairs(const pfa_problem& p) {
  const double lq = double(p.seqlen_q), lk = double(p.seqlen_k);
  if (!p.causal) return lq * lk;
  // Row i sees min(Lk, i + Lk - Lq + 1) keys when that is positive: an arithmetic series.
  const double first = std::max(0.0, lq - lk);  // first row that sees a key
  const double rows = lq - first;
  const double start = lk - lq + first + 1;  // keys seen by row `first` (>= 1)
  return std::min(rows * start + rows * (rows - 1) / 2, lq * lk);
}

pfa_status create(const pfa_host_info*, pfa_context** context, char* message, size_t capacity) {
  auto* c = new (std::nothrow) Context;
  if (c == nullptr) return fail(PFA_STATUS_OUT_OF_MEMORY, message, capacity, "out of memory");
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    c->no_device = std::string("no CUDA device: ") + cudaGetErrorString(e);
  } else if (n == 0) {
    c->no_device = "no CUDA device";
  }
  c->devices = e == cudaSuccess ? n : 0;
  for (int d = 0; d < c->devices; ++d) {
    int major = 0, minor = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, d);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, d);
    c->cc.push_back(major * 10 + minor);
  }
  cudaGetLastError();
  *context = reinterpret_cast<pfa_context*>(c);
  return PFA_STATUS_OK;
}

void destroy(pfa_context* context) { delete &ctx(context); }

pfa_status supports(pfa_context* context, const pfa_problem* problem, char* reason,
                    size_t capacity) {
  if (context == nullptr || problem == nullptr)
    return fail(PFA_STATUS_INVALID_ARGUMENT, reason, capacity, "null context or problem");
  const Context& c = ctx(context);
  if (problem->device_type != kDLCUDA)
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity, "serves CUDA tensors only");
  if (c.devices == 0) return fail(PFA_STATUS_UNSUPPORTED, reason, capacity, c.no_device.c_str());
  if (problem->device_id < 0 || problem->device_id >= c.devices)
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity, "no such CUDA device");
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, problem->device_id) !=
          cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, problem->device_id) !=
          cudaSuccess) {
    cudaGetLastError();
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity, "cannot query the CUDA device");
  }
  const kernels::AttentionParams a = shape_params(*problem);
  std::string why = kc::unsupported_reason(a, major, minor, kc::Path::automatic);
  if (!why.empty()) return fail(PFA_STATUS_UNSUPPORTED, reason, capacity, why.c_str());
  const bool sm90_ok = kc::unsupported_reason(a, major, minor, kc::Path::sm90).empty() &&
                       sm90_verified(problem->head_dim, problem->dtype);
  if (!sm90_ok && !kFallbackVerified)
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity,
                "this configuration has not been verified on a GPU yet");
  return PFA_STATUS_OK;
}

pfa_status estimate(pfa_context* context, const pfa_problem* problem, pfa_estimate* est,
                    char* message, size_t capacity) {
  if (problem == nullptr || est == nullptr)
    return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity, "null problem or estimate");
  const pfa_problem& p = *problem;
  const double flops = 4.0 * double(p.batch) * double(p.heads_q) * visible_pairs(p) * double(p.head_dim);
  const double el = p.dtype == PFA_DTYPE_FP32 ? 4.0 : 2.0;
  const double bytes = el * double(p.batch) * double(p.head_dim) *
                       (2.0 * double(p.seqlen_q) * double(p.heads_q) +
                        2.0 * double(p.seqlen_k) * double(p.heads_kv));
  // Roofline: ~600 TFLOP/s for the sm_90a kernel (measured 350-750 on an H100 over the paper
  // grid); ~150 TFLOP/s for the mma.sync kernel on cc 8.x or Hopper head dims the sm_90a kernel
  // skips (measured 230-320 on an H100; about half an A100's peak predicted); a modelled
  // ~2 TFLOP/s for the simple fallback kernel; ~3 TB/s either way.
  const int cc = context != nullptr && p.device_id >= 0 && p.device_id < int(ctx(context).cc.size())
                     ? ctx(context).cc[p.device_id]
                     : 0;
  const bool half = p.dtype != PFA_DTYPE_FP32;
  const bool sm90 = cc == 90 && half &&
                    (p.head_dim == 64 || p.head_dim == 96 || p.head_dim == 128 ||
                     p.head_dim == 192 || p.head_dim == 256);
  const bool sm80 = cc >= 80 && half && p.head_dim % 8 == 0 && p.head_dim <= 256;
  const double rate = sm90 ? 600e12 : sm80 ? 150e12 : 2e12;
  const double t = std::max(flops / rate, bytes / 3e12) + 5e-6;
  est->latency_s = t;
  est->energy_j = 600.0 * t;  // modelled at ~600 W board power under load
  est->rel_error = 0.0;
  return PFA_STATUS_OK;
}

pfa_status run(pfa_context* context, const pfa_run_args* args, pfa_run_result* result,
               char* message, size_t capacity) {
  if (context == nullptr || args == nullptr || args->problem == nullptr || args->q == nullptr ||
      args->k == nullptr || args->v == nullptr || args->out == nullptr)
    return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity, "null argument");
  if (ctx(context).devices == 0)
    return fail(PFA_STATUS_UNSUPPORTED, message, capacity, ctx(context).no_device.c_str());
  const kernels::AttentionParams a = plugin::params_from_args(*args);
  // Launch on the tensors' device; put the caller's current device back afterwards.
  int previous = -1;
  cudaGetDevice(&previous);
  const int device = args->q->device.device_id;
  if (previous != device && cudaSetDevice(device) != cudaSuccess) {
    const cudaError_t e = cudaGetLastError();
    write_message(message, capacity, "cudaSetDevice(%d): %s", device, cudaGetErrorString(e));
    return PFA_STATUS_DEVICE_ERROR;
  }
  const kc::LaunchResult r =
      kc::attention_forward(a, static_cast<cudaStream_t>(args->stream), kc::LaunchOptions{});
  if (previous >= 0 && previous != device) cudaSetDevice(previous);
  if (result != nullptr) {
    result->modelled_latency_s = 0.0;
    result->energy_j = -1.0;
    result->energy_measured = 0;
    result->error_estimate = 0.0;
    std::snprintf(result->detail, sizeof result->detail, "%s", r.path);
  }
  switch (r.status) {
    case kc::LaunchStatus::ok:
      return PFA_STATUS_OK;
    case kc::LaunchStatus::unsupported:
      return fail(PFA_STATUS_UNSUPPORTED, message, capacity, r.message.c_str());
    default:
      return fail(PFA_STATUS_DEVICE_ERROR, message, capacity, r.message.c_str());
  }
}

pfa_status device_info(pfa_context* context, int32_t device_type, int32_t device_id,
                       pfa_device_info* info, char* message, size_t capacity) {
  if (context == nullptr || info == nullptr)
    return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity, "null argument");
  if (device_type != kDLCUDA)
    return fail(PFA_STATUS_UNSUPPORTED, message, capacity, "serves CUDA devices only");
  if (ctx(context).devices == 0)
    return fail(PFA_STATUS_UNSUPPORTED, message, capacity, ctx(context).no_device.c_str());
  std::string name;
  const std::string detail = kc::describe_device(device_id, &name);
  if (name.empty()) return fail(PFA_STATUS_DEVICE_ERROR, message, capacity, detail.c_str());
  std::snprintf(info->name, sizeof info->name, "%s", name.c_str());
  std::snprintf(info->detail, sizeof info->detail, "%s", detail.c_str());
  return PFA_STATUS_OK;
}

const pfa_plugin_api kApi = {
    sizeof(pfa_plugin_api),
    PFA_ABI_VERSION_MAJOR,
    PFA_ABI_VERSION_MINOR,
    "cuda_fa3",
    "0.1.0",
    "FlashAttention-3-style forward attention for NVIDIA GPUs (sm_90a TMA/wgmma, simple fallback)",
    PFA_PROP_THREAD_SAFE,
    1u << kDLCUDA,
    &create,
    &destroy,
    &supports,
    &estimate,
    &run,
    &device_info,
    nullptr,
};

}  // namespace
}  // namespace pfa::cuda_fa3

PFA_PLUGIN_EXPORT pfa_status pfa_plugin_entry(const pfa_host_info* host, const pfa_plugin_api** api,
                                              char* message, size_t capacity) {
  return pfa::plugin::hand_out_table(host, api, pfa::cuda_fa3::kApi, message, capacity);
}

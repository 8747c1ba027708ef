#include "torch_sdpa_compute.h"

// The smallest ATen headers that do the job: <ATen/ATen.h> alone costs seconds per build.
#include <ATen/core/Tensor.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/logsumexp.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/ones.h>
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

// The single-kernel operators (flash, cuDNN, memory-efficient) are called from
// torch_sdpa_kernel_op.cpp, compiled into each torch_sdpa_<kernel> plugin alone: an operator whose
// signature differs in some LibTorch costs only its own plugin, never plain torch_sdpa.
#include "torch_sdpa_kernel_op.h"

#if TORCH_VERSION_MAJOR >= 2
#include <ATen/ops/scaled_dot_product_attention.h>
#else
#include <ATen/ops/_scaled_dot_product_attention.h>
#endif

#if defined(PFA_TORCH_CUDA)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <tuple>

// SDPA grew a `scale` argument in 2.1 and `enable_gqa` in 2.5.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define PFA_SDPA_HAS_SCALE 1
#endif
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
#define PFA_SDPA_HAS_GQA 1
#endif

namespace pfa::torch_sdpa {

namespace {

// Optional tensor arguments: c10::optional until LibTorch made it std::optional (2.4).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
using OptionalTensor = std::optional<at::Tensor>;
#else
using OptionalTensor = c10::optional<at::Tensor>;
#endif

// The math path materialises fp32 scores; it works through query rows in chunks of about this
// many bytes so that a long sequence does not need Lq * Lk floats at once.
constexpr int64_t kScoreChunkBytes = int64_t{256} << 20;

at::ScalarType scalar_type_of(int32_t dtype) {
  switch (dtype) {
    case PFA_DTYPE_FP32: return at::kFloat;
    case PFA_DTYPE_FP16: return at::kHalf;
    case PFA_DTYPE_BF16: return at::kBFloat16;
  }
  TORCH_CHECK(false, "unknown pfa dtype ", dtype);
}

at::Device device_of(const pfa_problem& p) {
  if (p.device_type == kDLCPU) return at::Device(at::kCPU);
  if (p.device_type == kDLCUDA) {
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(p.device_id));
  }
  TORCH_CHECK(false, "device type ", p.device_type, " is neither CPU nor CUDA");
}

// A tensor over the caller's memory: no copy, no ownership. DLPack strides are in elements, as
// LibTorch's are.
at::Tensor wrap(const DLTensor& t, const at::TensorOptions& options) {
  void* data = static_cast<char*>(t.data) + t.byte_offset;
  return at::from_blob(data, at::IntArrayRef(t.shape, static_cast<size_t>(t.ndim)),
                       at::IntArrayRef(t.strides, static_cast<size_t>(t.ndim)), options);
}

// [B, Hkv, L, D] -> [B, Hkv * group, L, D] where query head h reads key/value head h / group.
// A broadcast view when group is 1; otherwise reshape has to materialise the repeat.
at::Tensor expand_heads(const at::Tensor& t, int64_t group) {
  if (group == 1) return t;
  const int64_t b = t.size(0), h = t.size(1), l = t.size(2), d = t.size(3);
  return t.unsqueeze(2).expand({b, h, group, l, d}).reshape({b, h * group, l, d});
}

// Bottom-right causal mask for lq <= lk rows: true where query i may see key j (j <= i + lk - lq).
at::Tensor causal_keep_mask(int64_t lq, int64_t lk, const at::Device& device) {
  return at::ones({lq, lk}, at::TensorOptions().dtype(at::kBool).device(device)).tril(lk - lq);
}

// Attention in plain fp32 math with the log-sum-exp. q [B, Hq, lq, D], k/v [B, Hkv, Lk, D],
// o [B, Hq, lq, D] (caller's memory), lse [B, Hq, lq] (caller's memory). Every row sees a key.
void math_with_lse(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, at::Tensor& o,
                   at::Tensor& lse, double scale, bool causal) {
  const int64_t b = q.size(0), hq = q.size(1), lq = q.size(2), d = q.size(3);
  const int64_t hkv = k.size(1), lk = k.size(2), group = hq / hkv;
  const at::Tensor kt = k.to(at::kFloat).transpose(-2, -1);  // [B, Hkv, D, Lk]
  const at::Tensor vf = v.to(at::kFloat);                     // [B, Hkv, Lk, D]
  const at::Tensor drop = causal ? causal_keep_mask(lq, lk, q.device()).logical_not() : at::Tensor();
  const int64_t row_bytes = std::max<int64_t>(1, b * hq * lk * 4);
  const int64_t rows = std::clamp<int64_t>(kScoreChunkBytes / row_bytes, 1, lq);
  for (int64_t r0 = 0; r0 < lq; r0 += rows) {
    const int64_t n = std::min(rows, lq - r0);
    // Fold the query heads of one key/value head into its rows: K and V are read once, never
    // repeated per query head.
    const at::Tensor qc = q.narrow(2, r0, n).to(at::kFloat).reshape({b, hkv, group * n, d});
    at::Tensor s = at::matmul(qc, kt).mul_(scale).view({b, hkv, group, n, lk});
    if (causal) s.masked_fill_(drop.narrow(0, r0, n), -std::numeric_limits<double>::infinity());
    const at::Tensor row_lse = at::logsumexp(s, {-1}, /*keepdim=*/true);  // [B, Hkv, G, n, 1]
    s.sub_(row_lse).exp_();
    const at::Tensor oc = at::matmul(s.view({b, hkv, group * n, lk}), vf);  // [B, Hkv, G*n, D]
    o.narrow(2, r0, n).copy_(oc.view({b, hq, n, d}));
    lse.narrow(2, r0, n).copy_(row_lse.view({b, hq, n}));
  }
}

void write_detail(char* detail, size_t capacity, const std::string& text) {
  if (detail != nullptr && capacity > 0) std::snprintf(detail, capacity, "%s", text.c_str());
}

}  // namespace

const char* path_name(Path path) {
  switch (path) {
    case Path::automatic: return "sdpa";
    case Path::flash: return "flash";
    case Path::cudnn: return "cudnn";
    case Path::efficient: return "efficient";
  }
  return "unknown";
}

std::string path_refusal(Path path, const pfa_problem& p, int sm) {
  if (path == Path::automatic) return {};
  const std::string kernel = std::string("PyTorch's ") + path_name(path) + " kernel";
#if !defined(PFA_TORCH_CUDA)
  return std::string(torch_version_text()) + " was built without CUDA, which " + kernel + " needs";
#elif !defined(PFA_SDPA_KERNEL_OPS)
  return std::string(torch_version_text()) + " has no single-kernel attention operators (2.1+)";
#else
  if (path == Path::cudnn) {
#if !defined(PFA_SDPA_CUDNN_OP)
    return std::string(torch_version_text()) + " has no _scaled_dot_product_cudnn_attention with "
           "this signature (2.5+)";
#else
    if (cudnn_version() == 0) return "no cuDNN library in this process (LibTorch loads none)";
#endif
  }
  const bool half = p.dtype == PFA_DTYPE_FP16 || p.dtype == PFA_DTYPE_BF16;
  if (p.want_lse) {
    return kernel + " is called without its log-sum-exp here; torch_sdpa serves the LSE";
  }
  if (p.causal && p.seqlen_q > 1 && p.seqlen_q < p.seqlen_k) {
    return "causal with 1 < seqlen_q < seqlen_k needs a bottom-right mask; " + kernel +
           " is called with is_causal only (top-left)";
  }
  if (path == Path::flash || path == Path::cudnn) {
    if (!half) return kernel + " takes fp16 and bf16 only";
    if (sm != 0 && sm < 80) return kernel + " needs sm_80 or later (this device: sm_" + std::to_string(sm) + ")";
    if (p.head_dim > 256) return kernel + " takes head_dim up to 256";
    if (p.head_dim % 8 != 0) return kernel + " needs head_dim a multiple of 8 (alignment)";
  } else {  // efficient
    const int64_t align = half ? 8 : 4;
    if (sm != 0 && sm < 50) return kernel + " needs sm_50 or later";
    if (p.head_dim % align != 0) {
      return kernel + " needs head_dim a multiple of " + std::to_string(align) + " for this dtype";
    }
    if (p.head_dim > 512) return kernel + " is not used beyond head_dim 512 here";
  }
  return {};
#endif
  (void)p, (void)sm;
}

// Looked up at run time: no cuDNN header or library at build time.
size_t cudnn_version() {
  using Fn = size_t (*)();
  void* sym = dlsym(RTLD_DEFAULT, "cudnnGetVersion");
  if (sym == nullptr) {
    for (const char* name : {"libcudnn.so.9", "libcudnn.so.8", "libcudnn.so"}) {
      if (void* h = dlopen(name, RTLD_LAZY | RTLD_NOLOAD)) {
        sym = dlsym(h, "cudnnGetVersion");
        dlclose(h);
        if (sym != nullptr) break;
      }
    }
  }
  return sym != nullptr ? reinterpret_cast<Fn>(sym)() : 0;
}

std::string cudnn_version_text() {
#if defined(PFA_TORCH_CUDA)
  const size_t v = cudnn_version();
  if (v == 0) return {};
  // cuDNN 9 numbers versions major*10000 + minor*100 + patch, cuDNN 8 major*1000 + ...
  const size_t major = v >= 90000 ? v / 10000 : v / 1000;
  const size_t minor = v >= 90000 ? (v % 10000) / 100 : (v % 1000) / 100;
  return "cuDNN " + std::to_string(major) + "." + std::to_string(minor) + "." +
         std::to_string(v % 100);
#else
  return {};
#endif
}

void compute_attention(const pfa_run_args& args, Path kernel, char* detail, size_t capacity) {
  const pfa_problem& p = *args.problem;
  // No autograd bookkeeping: these tensors are views of someone else's memory.
  c10::InferenceMode inference;
  const at::Device device = device_of(p);
  const at::TensorOptions options =
      at::TensorOptions().dtype(scalar_type_of(p.dtype)).device(device);
  if (kernel != Path::automatic) {
    const std::string refusal = path_refusal(kernel, p, 0);
    TORCH_CHECK(refusal.empty(), refusal);
    TORCH_CHECK(device.is_cuda(), "the torch_sdpa_", path_name(kernel),
                " plugin serves CUDA tensors only");
  }

#if defined(PFA_TORCH_CUDA)
  // Everything below, allocations included, is ordered on the caller's stream.
  std::optional<c10::cuda::CUDAStreamGuard> stream_guard;
  if (device.is_cuda()) {
    stream_guard.emplace(c10::cuda::getStreamFromExternal(
        static_cast<cudaStream_t>(args.stream), device.index()));
  }
#endif

  // The host hands over [B, S, H, D] views; LibTorch's attention wants [B, H, S, D].
  at::Tensor q = wrap(*args.q, options).permute({0, 2, 1, 3});
  const at::Tensor k = wrap(*args.k, options).permute({0, 2, 1, 3});
  const at::Tensor v = wrap(*args.v, options).permute({0, 2, 1, 3});
  at::Tensor o = wrap(*args.out, options).permute({0, 2, 1, 3});
  at::Tensor lse;
  if (p.want_lse && args.lse != nullptr) lse = wrap(*args.lse, options.dtype(at::kFloat));

  const int64_t group = p.heads_q / p.heads_kv;
  const double scale = p.softmax_scale;

  // Bottom-right causal with more queries than keys: the first Lq - Lk rows see no key. They get
  // zeros (and LSE -inf) here and never reach softmax, which would turn them into NaN; the rows
  // left form a square problem whose causal mask is the usual top-left one.
  int64_t lq = p.seqlen_q;
  const int64_t lk = p.seqlen_k;
  if (p.causal && lq > lk) {
    const int64_t blind = lq - lk;
    o.narrow(2, 0, blind).zero_();
    if (lse.defined()) lse.narrow(2, 0, blind).fill_(-std::numeric_limits<double>::infinity());
    q = q.narrow(2, blind, lk);
    o = o.narrow(2, blind, lk);
    if (lse.defined()) lse = lse.narrow(2, blind, lk);
    lq = lk;
  }
  // SDPA's is_causal is top-left aligned: right only when the problem is square. Fewer queries
  // than keys needs an explicit bottom-right mask, except for a single query row, which sees
  // every key (the decode step): a mask there would only push SDPA onto a slower kernel.
  const bool square_causal = p.causal && lq == lk;
  const bool needs_mask = p.causal && lq < lk && lq > 1;

  if (lse.defined()) {
    math_with_lse(q, k, v, o, lse, scale, p.causal != 0);
    write_detail(detail, capacity, "math+lse");
    return;
  }

  if (kernel != Path::automatic) {
    // The flash kernel reads grouped K/V heads itself; cuDNN and memory-efficient get them
    // expanded (a copy of K and V per group). Should a LibTorch's flash operator refuse grouped
    // heads, the call is retried expanded and later calls expand from the start.
    static std::atomic<bool> flash_reads_groups{true};
    bool expand = group > 1 && !(kernel == Path::flash && flash_reads_groups.load());
    if (group > 1 && !expand) {
      try {
        o.copy_(run_kernel_op(kernel, q, k, v, square_causal, scale));
      } catch (const c10::Error&) {
        flash_reads_groups.store(false);
        expand = true;
      }
    }
    if (group == 1 || expand) {
      const at::Tensor kk = expand ? expand_heads(k, group) : k;
      const at::Tensor vv = expand ? expand_heads(v, group) : v;
      o.copy_(run_kernel_op(kernel, q, kk, vv, square_causal, scale));
    }
    std::string text = path_name(kernel);
    if (group > 1) text += expand ? "+expand" : "+gqa";
    write_detail(detail, capacity, text);
    return;
  }

  std::string path;
  OptionalTensor mask;
  if (needs_mask) mask = causal_keep_mask(lq, lk, device);
  at::Tensor result;

#if TORCH_VERSION_MAJOR >= 2
  at::Tensor kk = k, vv = v;
  bool gqa = false;
  if (group > 1) {
#if defined(PFA_SDPA_HAS_GQA)
    // fp32 on CUDA: only the math kernel takes enable_gqa, while the memory-efficient kernel
    // on expanded heads is 1.8x (full) to 4x (causal) faster on an H100 with LibTorch 2.11,
    // the copy included.
    gqa = !(device.is_cuda() && p.dtype == PFA_DTYPE_FP32);
#endif
    if (!gqa) {
      kk = expand_heads(k, group);
      vv = expand_heads(v, group);
    }
  }
#if defined(PFA_SDPA_HAS_GQA)
  result = at::scaled_dot_product_attention(q, kk, vv, mask, 0.0, square_causal, scale, gqa);
#elif defined(PFA_SDPA_HAS_SCALE)
  result = at::scaled_dot_product_attention(q, kk, vv, mask, 0.0, square_causal, scale);
#else
  // 2.0 always scales by 1/sqrt(D): fold the ratio into q.
  const double ratio = scale * std::sqrt(static_cast<double>(p.head_dim));
  const at::Tensor qs = std::abs(ratio - 1.0) > 1e-7 ? q.mul(ratio) : q;
  result = at::scaled_dot_product_attention(qs, kk, vv, mask, 0.0, square_causal);
#endif
  path = "sdpa";
  if (needs_mask) path += "+mask";
  if (group > 1) path += gqa ? "+gqa" : "+expand";
#else
  // 1.13: the private _scaled_dot_product_attention(q, k, v, mask, dropout, need_weights,
  // is_causal) returns (output, weights) and always scales by 1/sqrt(D): fold the ratio into q.
  const double ratio = scale * std::sqrt(static_cast<double>(p.head_dim));
  const at::Tensor qs = std::abs(ratio - 1.0) > 1e-7 ? q.mul(ratio) : q;
  result = std::get<0>(at::_scaled_dot_product_attention(
      qs, expand_heads(k, group), expand_heads(v, group), mask, 0.0, false, square_causal));
  path = "_sdpa_1.13";
  if (needs_mask) path += "+mask";
#endif

  o.copy_(result);
  write_detail(detail, capacity, path);
}

bool cpu_supports_fp16() {
  try {
    c10::InferenceMode inference;
    const at::Tensor a = at::ones({2, 2}, at::TensorOptions().dtype(at::kHalf));
    (void)at::matmul(a, a);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

const char* torch_version_text() { return "LibTorch " TORCH_VERSION; }

}  // namespace pfa::torch_sdpa

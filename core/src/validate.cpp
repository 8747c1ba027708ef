#include "validate.h"

#include <pfa/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace pfa::detail {

namespace {

// Largest single dimension and largest tensor span accepted; beyond these a size is surely a bug.
constexpr int64_t kMaxDim = int64_t{1} << 31;
constexpr int64_t kMaxSpanBytes = int64_t{1} << 46;

[[noreturn]] void reject(const std::string& message) {
  throw Error(ErrorCode::invalid_argument, message);
}

int32_t dtype_of(const DLTensor& t, const char* name) {
  const DLDataType d = t.dtype;
  if (d.lanes == 1) {
    if (d.code == kDLFloat && d.bits == 32) return PFA_DTYPE_FP32;
    if (d.code == kDLFloat && d.bits == 16) return PFA_DTYPE_FP16;
    if (d.code == kDLBfloat && d.bits == 16) return PFA_DTYPE_BF16;
  }
  reject(fmt::format("{} has dtype code={} bits={} lanes={}; pfa takes float32, float16 or "
                     "bfloat16", name, d.code, d.bits, d.lanes));
}

// Copies `t` into a view whose dimensions follow `order` (indexes into t's dims), filling strides.
void make_view(const DLTensor& t, const char* name, const std::array<int, 4>& order,
               TensorView& view) {
  if (t.ndim != 4) {
    reject(fmt::format("{} must have 4 dimensions, got {}", name, t.ndim));
  }
  if (t.shape == nullptr) reject(fmt::format("{} has no shape", name));
  for (int i = 0; i < 4; ++i) {
    if (t.shape[i] <= 0) {
      reject(fmt::format("{} has an empty or negative dimension {} (size {})", name, i,
                         t.shape[i]));
    }
    if (t.shape[i] > kMaxDim) {
      reject(fmt::format("{} dimension {} is absurdly large ({})", name, i, t.shape[i]));
    }
  }
  std::array<int64_t, 4> strides{};
  if (t.strides != nullptr) {
    std::copy(t.strides, t.strides + 4, strides.begin());
  } else {
    int64_t s = 1;
    for (int i = 3; i >= 0; --i) {
      strides[i] = s;
      if (__builtin_mul_overflow(s, t.shape[i], &s)) {
        reject(fmt::format("{} has absurdly many elements", name));
      }
    }
  }
  for (int i = 0; i < 4; ++i) {
    if (strides[i] < 0) {
      reject(fmt::format("{} has a negative stride in dimension {}; pfa needs non-negative "
                         "strides", name, i));
    }
  }
  view.tensor = t;
  for (int i = 0; i < 4; ++i) {
    view.shape[i] = t.shape[order[i]];
    view.strides[i] = strides[order[i]];
  }
  if (view.strides[3] != 1 && view.shape[3] > 1) {
    reject(fmt::format("{} must have a unit stride in head_dim (got {}); make the last "
                       "dimension contiguous", name, view.strides[3]));
  }
  view.strides[3] = 1;
  if (t.data == nullptr) reject(fmt::format("{} has a null data pointer", name));
  view.tensor.shape = view.shape.data();
  view.tensor.strides = view.strides.data();
}

// The [first, last) byte range a view can touch.
std::pair<uintptr_t, uintptr_t> byte_span(const TensorView& v, size_t element_size) {
  int64_t last = 0;
  for (int i = 0; i < 4; ++i) last += (v.shape[i] - 1) * v.strides[i];
  const uintptr_t begin =
      reinterpret_cast<uintptr_t>(v.tensor.data) + static_cast<uintptr_t>(v.tensor.byte_offset);
  return {begin, begin + static_cast<uintptr_t>((last + 1) * static_cast<int64_t>(element_size))};
}

int64_t span_bytes(const TensorView& v, size_t element_size) {
  // Overflow-safe: every term is checked against the cap before it is added.
  long double last = 0;
  for (int i = 0; i < 4; ++i) last += static_cast<long double>(v.shape[i] - 1) * v.strides[i];
  const long double bytes = (last + 1) * element_size;
  return bytes > static_cast<long double>(kMaxSpanBytes) ? -1 : static_cast<int64_t>(bytes);
}

bool overlaps(std::pair<uintptr_t, uintptr_t> a, std::pair<uintptr_t, uintptr_t> b) {
  return a.first < b.second && b.first < a.second;
}

// True when no two distinct indexes of the view address the same element.
bool writes_each_element_once(const TensorView& v) {
  std::array<int, 4> dims = {0, 1, 2, 3};
  std::sort(dims.begin(), dims.end(),
            [&](int a, int b) { return v.strides[a] < v.strides[b]; });
  int64_t reach = 1;  // elements spanned by the dimensions seen so far
  for (int d : dims) {
    if (v.shape[d] == 1) continue;
    if (v.strides[d] < reach) return false;
    reach = v.strides[d] * v.shape[d];
  }
  return true;
}

pfa_layout layout_of(const TensorView& v) {
  // v is in [b, s, h, d] order.
  const auto& s = v.strides;
  const auto& n = v.shape;
  if (s[2] == n[3] && s[1] == n[2] * n[3] && s[0] == n[1] * n[2] * n[3]) return PFA_LAYOUT_BSHD;
  if (s[1] == n[3] && s[2] == n[1] * n[3] && s[0] == n[1] * n[2] * n[3]) return PFA_LAYOUT_BHSD;
  return PFA_LAYOUT_STRIDED;
}

}  // namespace

void validate_call(const DLTensor& q, const DLTensor& k, const DLTensor& v, const DLTensor& out,
                   const AttentionOptions& options, ValidatedCall& call) {
  std::array<int, 4> order;
  switch (options.layout) {
    case PFA_LAYOUT_BSHD: case PFA_LAYOUT_STRIDED: order = {0, 1, 2, 3}; break;
    case PFA_LAYOUT_BHSD: order = {0, 2, 1, 3}; break;
    default: reject(fmt::format("unknown layout {}; use PFA_LAYOUT_BSHD or PFA_LAYOUT_BHSD",
                                static_cast<int>(options.layout)));
  }
  make_view(q, "q", order, call.q);
  make_view(k, "k", order, call.k);
  make_view(v, "v", order, call.v);
  make_view(out, "out", order, call.out);

  const int32_t dtype = dtype_of(q, "q");
  if (dtype_of(k, "k") != dtype || dtype_of(v, "v") != dtype || dtype_of(out, "out") != dtype) {
    reject(fmt::format("q, k, v and out must share one dtype (q {}, k {}, v {}, out {})",
                       dtype_name(dtype), dtype_name(dtype_of(k, "k")),
                       dtype_name(dtype_of(v, "v")), dtype_name(dtype_of(out, "out"))));
  }
  const DLDevice dev = q.device;
  for (const auto* t : {&k, &v, &out}) {
    if (t->device.device_type != dev.device_type || t->device.device_id != dev.device_id) {
      reject(fmt::format("q, k, v and out must be on one device (q is on {}:{}, another tensor "
                         "on {}:{})", device_name(dev.device_type), dev.device_id,
                         device_name(t->device.device_type), t->device.device_id));
    }
  }

  const auto& qs = call.q.shape;
  const auto& ks = call.k.shape;
  const auto& vs = call.v.shape;
  const auto& os = call.out.shape;
  const char* order_text = options.layout == PFA_LAYOUT_BHSD ? "[batch, heads, seq, dim]"
                                                             : "[batch, seq, heads, dim]";
  auto shape_text = [&](const TensorView& t) {
    const auto& s = t.shape;
    return options.layout == PFA_LAYOUT_BHSD
               ? fmt::format("[{}, {}, {}, {}]", s[0], s[2], s[1], s[3])
               : fmt::format("[{}, {}, {}, {}]", s[0], s[1], s[2], s[3]);
  };
  if (ks != vs) {
    reject(fmt::format("k {} and v {} must have the same shape ({})", shape_text(call.k),
                       shape_text(call.v), order_text));
  }
  if (os != qs) {
    reject(fmt::format("out {} must have the shape of q {} ({})", shape_text(call.out),
                       shape_text(call.q), order_text));
  }
  if (ks[0] != qs[0]) {
    reject(fmt::format("batch of k ({}) differs from batch of q ({})", ks[0], qs[0]));
  }
  if (ks[3] != qs[3]) {
    reject(fmt::format("head_dim of k ({}) differs from head_dim of q ({})", ks[3], qs[3]));
  }
  if (qs[2] % ks[2] != 0) {
    reject(fmt::format("heads of q ({}) must be a multiple of heads of k and v ({})", qs[2],
                       ks[2]));
  }

  const size_t element = dtype_size(dtype);
  for (const auto* view : {&call.q, &call.k, &call.v, &call.out}) {
    if (span_bytes(*view, element) < 0) {
      reject("a tensor spans more than 64 TiB; its sizes or strides are absurd");
    }
  }
  if (!writes_each_element_once(call.out)) {
    reject("out has strides that make elements overlap; give it a layout where every element "
           "has its own memory");
  }
  const auto out_span = byte_span(call.out, element);
  const char* names[] = {"q", "k", "v"};
  const TensorView* inputs[] = {&call.q, &call.k, &call.v};
  for (int i = 0; i < 3; ++i) {
    if (overlaps(out_span, byte_span(*inputs[i], element))) {
      reject(fmt::format("out overlaps {} in memory; pfa does not compute attention in place",
                         names[i]));
    }
  }

  float scale = options.softmax_scale;
  if (scale == 0.0f) scale = 1.0f / std::sqrt(static_cast<float>(qs[3]));
  if (!std::isfinite(scale)) reject("softmax_scale must be finite");
  if (options.ranks < 1) reject(fmt::format("ranks must be at least 1 (got {})", options.ranks));
  if (options.ranks > 1) {
    if (options.communicator == nullptr) {
      reject(fmt::format("a problem split over {} ranks needs the group's communicator",
                         options.ranks));
    }
    if (options.causal && (qs[1] != ks[1] || qs[1] % 2 != 0)) {
      reject(fmt::format("a causal problem split over ranks needs equal, even shard lengths for q "
                         "and k (two mirrored chunks each); got seqlen_q {} and seqlen_k {}",
                         qs[1], ks[1]));
    }
  }

  call.has_lse = options.lse != nullptr;
  if (call.has_lse) {
    const DLTensor& l = *options.lse;
    if (l.ndim != 3 || l.shape == nullptr || l.shape[0] != qs[0] || l.shape[1] != qs[2] ||
        l.shape[2] != qs[1]) {
      reject(fmt::format("lse must be float32 [batch, heads_q, seqlen_q] = [{}, {}, {}]", qs[0],
                         qs[2], qs[1]));
    }
    if (l.dtype.code != kDLFloat || l.dtype.bits != 32 || l.dtype.lanes != 1) {
      reject("lse must be float32");
    }
    if (l.strides != nullptr &&
        !(l.strides[2] == 1 && l.strides[1] == l.shape[2] && l.strides[0] == l.shape[1] * l.shape[2])) {
      reject("lse must be contiguous");
    }
    if (l.device.device_type != dev.device_type || l.device.device_id != dev.device_id) {
      reject("lse must be on the device of q");
    }
    if (l.data == nullptr) reject("lse has a null data pointer");
    call.lse.tensor = l;
    call.lse.shape = {l.shape[0], l.shape[1], l.shape[2], 1};
    call.lse.strides = {l.shape[1] * l.shape[2], l.shape[2], 1, 1};
    call.lse.tensor.shape = call.lse.shape.data();
    call.lse.tensor.strides = call.lse.strides.data();
    const uintptr_t begin =
        reinterpret_cast<uintptr_t>(l.data) + static_cast<uintptr_t>(l.byte_offset);
    const std::pair<uintptr_t, uintptr_t> lse_span = {
        begin, begin + static_cast<uintptr_t>(qs[0] * qs[1] * qs[2]) * 4};
    if (overlaps(lse_span, out_span)) reject("lse overlaps out in memory");
    for (int i = 0; i < 3; ++i) {
      if (overlaps(lse_span, byte_span(*inputs[i], element))) {
        reject(fmt::format("lse overlaps {} in memory", names[i]));
      }
    }
  }

  Problem& p = call.problem;
  p = Problem{};
  p.struct_size = sizeof(Problem);
  p.batch = qs[0];
  p.seqlen_q = qs[1];
  p.heads_q = qs[2];
  p.head_dim = qs[3];
  p.seqlen_k = ks[1];
  p.heads_kv = ks[2];
  p.dtype = dtype;
  const pfa_layout lq = layout_of(call.q);
  p.layout = (lq == layout_of(call.k) && lq == layout_of(call.v)) ? lq : PFA_LAYOUT_STRIDED;
  p.causal = options.causal ? 1 : 0;
  p.want_lse = call.has_lse ? 1 : 0;
  p.softmax_scale = scale;
  p.device_type = dev.device_type;
  p.device_id = dev.device_id;
  p.ranks = options.ranks;
}

}  // namespace pfa::detail

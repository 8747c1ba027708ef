// Optional at::Tensor overloads of pfa::Engine::attention. Header-only: include it from code that
// already links LibTorch; the pfa library itself never does. The tensors are described to the
// engine in place (pointer, sizes, strides, device, dtype): nothing is copied or allocated, and
// LibTorch types never reach a plugin.
#pragma once

#include <pfa/engine.h>
#include <pfa/error.h>
#include <pfa/options.h>
#include <pfa/report.h>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <string>

namespace pfa {

namespace torch_detail {

inline DLDataType dl_dtype_of(const at::Tensor& t, const char* name) {
  switch (t.scalar_type()) {
    case at::kFloat: return DLDataType{kDLFloat, 32, 1};
    case at::kHalf: return DLDataType{kDLFloat, 16, 1};
    case at::kBFloat16: return DLDataType{kDLBfloat, 16, 1};
    default:
      throw Error(ErrorCode::invalid_argument,
                  std::string(name) + " has dtype " + c10::toString(t.scalar_type()) +
                      "; pfa takes float32, float16 or bfloat16");
  }
}

inline DLDevice dl_device_of(const at::Tensor& t, const char* name) {
  const c10::Device device = t.device();
  if (device.is_cpu()) return DLDevice{kDLCPU, 0};
  if (device.is_cuda()) return DLDevice{kDLCUDA, device.has_index() ? device.index() : 0};
  throw Error(ErrorCode::invalid_argument,
              std::string(name) + " is on device " + device.str() + "; pfa takes CPU or CUDA tensors");
}

// c10::Stream::native_handle() appeared in LibTorch 2.x; without it, fall back to the default
// stream (a template, so that the missing member is not an error).
template <typename Stream>
void* native_handle_of(const Stream& stream) {
  if constexpr (requires { stream.native_handle(); }) {
    return stream.native_handle();
  } else {
    return nullptr;
  }
}

}  // namespace torch_detail

// LibTorch's current stream on a CUDA device as a cudaStream_t (null: the default stream, or a
// CPU device). Work ordered on it runs after the LibTorch work that produced the tensors.
inline void* current_stream(const c10::Device& device) {
  if (!device.is_cuda()) return nullptr;
  return torch_detail::native_handle_of(
      c10::impl::getDeviceGuardImpl(device.type())->getStream(device));
}

// A DLTensor that describes an at::Tensor without owning anything: valid while the tensor lives
// and keeps its sizes and strides. data_ptr() already includes the storage offset.
inline DLTensor dl_view(const at::Tensor& t, const char* name = "tensor") {
  if (!t.defined()) throw Error(ErrorCode::invalid_argument, std::string(name) + " is undefined");
  DLTensor dl{};
  dl.data = t.data_ptr();
  dl.device = torch_detail::dl_device_of(t, name);
  dl.ndim = static_cast<int32_t>(t.dim());
  dl.dtype = torch_detail::dl_dtype_of(t, name);
  // DLPack's fields are non-const by history; the engine never writes through them.
  dl.shape = const_cast<int64_t*>(t.sizes().data());
  dl.strides = const_cast<int64_t*>(t.strides().data());
  dl.byte_offset = 0;
  return dl;
}

// Computes attention of q, k, v into out, in the layout options.layout names (BSHD by default:
// [batch, seq, heads, head_dim]; BHSD: [batch, heads, seq, head_dim]), any strides with a unit
// head_dim stride. CUDA tensors run on options.stream, or when that is null on LibTorch's
// current stream for q's device, as LibTorch's own operators would. Throws pfa::Error as
// Engine::attention does.
inline Report attention(Engine& engine, const at::Tensor& q, const at::Tensor& k,
                        const at::Tensor& v, at::Tensor& out, AttentionOptions options = {}) {
  const DLTensor dq = dl_view(q, "q");
  const DLTensor dk = dl_view(k, "k");
  const DLTensor dv = dl_view(v, "v");
  DLTensor dout = dl_view(out, "out");
  if (options.stream == nullptr && q.is_cuda()) options.stream = current_stream(q.device());
  return engine.attention(dq, dk, dv, dout, options);
}

// As above, and writes the log-sum-exp into lse (float32 [batch, heads_q, seqlen_q], contiguous).
inline Report attention(Engine& engine, const at::Tensor& q, const at::Tensor& k,
                        const at::Tensor& v, at::Tensor& out, at::Tensor& lse,
                        AttentionOptions options = {}) {
  DLTensor dlse = dl_view(lse, "lse");
  options.lse = &dlse;
  return attention(engine, q, k, v, out, options);
}

// Allocates the output like q (same sizes, strides where dense, dtype and device) and returns it.
inline at::Tensor attention(Engine& engine, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v, const AttentionOptions& options = {},
                            Report* report = nullptr) {
  at::Tensor out = at::empty_like(q);
  const Report r = attention(engine, q, k, v, out, options);
  if (report != nullptr) *report = r;
  return out;
}

}  // namespace pfa

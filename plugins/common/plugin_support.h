// Small helpers shared by pfa's own plugin adapters: writing messages into the host's buffer and
// turning the ABI's run arguments into a kernel's AttentionParams. Header-only, plain C++, no
// dependency on the engine.
#pragma once

#include <pfa/plugin_abi.h>
#include <pfa/kernels/attention_params.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace pfa::plugin {

// printf into the host's message buffer; always NUL-terminates, never overflows.
inline void write_message(char* message, size_t capacity, const char* format, ...)
    __attribute__((format(printf, 3, 4)));
inline void write_message(char* message, size_t capacity, const char* format, ...) {
  if (message == nullptr || capacity == 0) return;
  va_list args;
  va_start(args, format);
  std::vsnprintf(message, capacity, format, args);
  va_end(args);
}

// Returns `status` after writing the message: `return fail(PFA_STATUS_UNSUPPORTED, m, c, "...")`.
inline pfa_status fail(pfa_status status, char* message, size_t capacity, const char* text) {
  write_message(message, capacity, "%s", text);
  return status;
}

// The body of a plugin's pfa_plugin_entry: refuses a host of another ABI major version (saying
// both versions) and otherwise hands out `table`.
inline pfa_status hand_out_table(const pfa_host_info* host, const pfa_plugin_api** api,
                                 const pfa_plugin_api& table, char* message, size_t capacity) {
  if (host == nullptr || api == nullptr) {
    return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity,
                "pfa_plugin_entry needs host info and a place for the table");
  }
  const bool has_major = PFA_STRUCT_HAS(host, pfa_host_info, abi_major);
  if (!has_major || host->abi_major != PFA_ABI_VERSION_MAJOR) {
    write_message(message, capacity, "%s speaks plugin ABI %u.x; the host speaks %u.x", table.name,
                  PFA_ABI_VERSION_MAJOR, has_major ? host->abi_major : 0u);
    return PFA_STATUS_ABI_MISMATCH;
  }
  *api = &table;
  return PFA_STATUS_OK;
}

inline kernels::DType to_kernel_dtype(int32_t dtype) { return static_cast<kernels::DType>(dtype); }

// Devices the problem is split over: problem.ranks, or 1 where it is unset or the host's struct
// predates ABI 1.2.
inline int32_t problem_ranks(const pfa_problem& p) {
  return PFA_STRUCT_HAS(&p, pfa_problem, ranks) && p.ranks > 1 ? p.ranks : 1;
}

// Copies pointers, sizes and strides out of the ABI tensors. The host has validated them already.
inline kernels::AttentionParams params_from_args(const pfa_run_args& args) {
  const pfa_problem& p = *args.problem;
  kernels::AttentionParams out;
  auto data = [](const DLTensor* t) {
    return static_cast<char*>(t->data) + t->byte_offset;
  };
  out.q = data(args.q);
  out.k = data(args.k);
  out.v = data(args.v);
  out.out = data(args.out);
  out.lse = args.lse ? reinterpret_cast<float*>(data(args.lse)) : nullptr;
  out.batch = p.batch;
  out.heads_q = p.heads_q;
  out.heads_kv = p.heads_kv;
  out.seqlen_q = p.seqlen_q;
  out.seqlen_k = p.seqlen_k;
  out.head_dim = p.head_dim;
  for (int i = 0; i < 3; ++i) {
    out.q_stride[i] = args.q->strides[i];
    out.k_stride[i] = args.k->strides[i];
    out.v_stride[i] = args.v->strides[i];
    out.o_stride[i] = args.out->strides[i];
  }
  out.dtype = to_kernel_dtype(p.dtype);
  out.causal = p.causal != 0;
  out.softmax_scale = p.softmax_scale;
  return out;
}

}  // namespace pfa::plugin

// cuda_ring: attention over a sequence split across GPUs (ring attention). Each rank keeps its query
// shard; the key/value shards travel round the ring by NCCL send/receive on a stream of the
// plugin's own while cuda_fa3's kernel computes on the caller's stream with the shard that is
// already here, and each partial result is folded into an fp32 accumulator by its log-sum-exp.
// Layout and plan: pfa/sequence_sharding.h (mirrored chunks, so causal work is the same on every
// rank). The application owns the communicator (one rank per GPU, in one process or many).
//
// Per call, nothing is allocated once the per-device workspace has grown to the shape (grow-only,
// kept for the next call), and nothing synchronises the host.
#include <plugin_support.h>

#include <pfa/kernels/cuda/attention_cuda.h>
#include <pfa/kernels/cuda/partial_merge.h>
#include <pfa/sequence_sharding.h>

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <mutex>
#include <new>
#include <string>

namespace pfa::cuda_ring {
namespace {

using plugin::fail;
using plugin::write_message;
namespace kc = kernels::cuda;

// What one device keeps between calls: the communication stream and its events, and buffers that
// only grow. One lock per device: ranks on different GPUs of one process never wait on each other.
struct DeviceState {
  std::mutex mutex;
  bool ready = false;
  cudaStream_t comm = nullptr;
  cudaEvent_t inputs_ready = nullptr, kv_arrived = nullptr, compute_done = nullptr;
  struct Buffer {
    void* ptr = nullptr;
    size_t bytes = 0;
  };
  Buffer kv[2], acc_out, acc_lse, part_out, part_lse;
};

struct Context {
  int devices = 0;
  std::string no_device;
  std::unique_ptr<DeviceState[]> state;
};

Context& ctx(pfa_context* c) { return *reinterpret_cast<Context*>(c); }

using plugin::problem_ranks;

// Why the kernels cannot serve one of the calls a rank makes (the local step and, causal, the two
// half steps), or empty when they serve them all.
std::string unsupported_step(const pfa_problem& p, int cc_major, int cc_minor) {
  kernels::AttentionParams a;
  a.batch = p.batch;
  a.heads_q = p.heads_q;
  a.heads_kv = p.heads_kv;
  a.head_dim = p.head_dim;
  a.dtype = plugin::to_kernel_dtype(p.dtype);
  a.softmax_scale = p.softmax_scale;
  const int n = problem_ranks(p);
  const int64_t qd = p.heads_q * p.head_dim, kd = p.heads_kv * p.head_dim;
  for (int step = 0; step < std::min(n, 3); ++step) {
    // Ranks 0 and n-1 between them meet every kind of step (local, earlier and later visitor).
    for (int rank : {0, n - 1}) {
      const auto s = sharding::ring_step(n, rank, step, p.seqlen_q, p.seqlen_k, p.causal != 0);
      a.seqlen_q = s.q_rows;
      a.seqlen_k = s.kv_rows;
      a.causal = s.causal;
      a.q_stride[0] = p.seqlen_q * qd, a.q_stride[1] = qd, a.q_stride[2] = p.head_dim;
      a.k_stride[0] = p.seqlen_k * kd, a.k_stride[1] = kd, a.k_stride[2] = p.head_dim;
      std::copy(a.k_stride, a.k_stride + 3, a.v_stride);
      a.o_stride[0] = s.q_rows * qd, a.o_stride[1] = qd, a.o_stride[2] = p.head_dim;
      std::string why = kc::unsupported_reason(a, cc_major, cc_minor, kc::Path::automatic);
      if (!why.empty()) return why;
    }
  }
  return {};
}

pfa_status create(const pfa_host_info*, pfa_context** context, char* message, size_t capacity) {
  auto* c = new (std::nothrow) Context;
  if (c == nullptr) return fail(PFA_STATUS_OUT_OF_MEMORY, message, capacity, "out of memory");
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    c->no_device = std::string("no CUDA device: ") + cudaGetErrorString(e);
    n = 0;
  } else if (n == 0) {
    c->no_device = "no CUDA device";
  }
  c->devices = n;
  c->state.reset(new (std::nothrow) DeviceState[std::max(n, 1)]);
  if (!c->state) {
    delete c;
    return fail(PFA_STATUS_OUT_OF_MEMORY, message, capacity, "out of memory");
  }
  *context = reinterpret_cast<pfa_context*>(c);
  return PFA_STATUS_OK;
}

void destroy(pfa_context* context) {
  Context& c = ctx(context);
  for (int d = 0; d < c.devices; ++d) {
    DeviceState& s = c.state[d];
    if (!s.ready) continue;
    cudaSetDevice(d);
    cudaStreamSynchronize(s.comm);
    for (auto* b : {&s.kv[0], &s.kv[1], &s.acc_out, &s.acc_lse, &s.part_out, &s.part_lse}) {
      cudaFree(b->ptr);
    }
    cudaEventDestroy(s.inputs_ready);
    cudaEventDestroy(s.kv_arrived);
    cudaEventDestroy(s.compute_done);
    cudaStreamDestroy(s.comm);
  }
  cudaGetLastError();
  delete &c;
}

pfa_status supports(pfa_context* context, const pfa_problem* problem, char* reason,
                    size_t capacity) {
  if (context == nullptr || problem == nullptr)
    return fail(PFA_STATUS_INVALID_ARGUMENT, reason, capacity, "null context or problem");
  const Context& c = ctx(context);
  const pfa_problem& p = *problem;
  if (p.device_type != kDLCUDA)
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity, "serves CUDA tensors only");
  if (problem_ranks(p) < 2)
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity,
                "serves sequences split over several GPUs only (one GPU: cuda_fa3)");
  if (c.devices == 0) return fail(PFA_STATUS_UNSUPPORTED, reason, capacity, c.no_device.c_str());
  if (p.device_id < 0 || p.device_id >= c.devices)
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity, "no such CUDA device");
  if (p.dtype == PFA_DTYPE_FP32)
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity, "fp16 and bf16 only");
  if (p.layout != PFA_LAYOUT_BSHD)
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity,
                "key/value shards travel as they are: contiguous BSHD tensors only");
  if (p.causal && (p.seqlen_q != p.seqlen_k || p.seqlen_q % 2 != 0))
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity,
                "causal shards must hold two mirrored chunks of equal length");
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, p.device_id) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, p.device_id) != cudaSuccess) {
    cudaGetLastError();
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity, "cannot query the CUDA device");
  }
  const std::string why = unsupported_step(p, major, minor);
  if (!why.empty()) return fail(PFA_STATUS_UNSUPPORTED, reason, capacity, why.c_str());
  return PFA_STATUS_OK;
}

pfa_status estimate(pfa_context*, const pfa_problem* problem, pfa_estimate* est, char* message,
                    size_t capacity) {
  if (problem == nullptr || est == nullptr)
    return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity, "null problem or estimate");
  const pfa_problem& p = *problem;
  const double n = problem_ranks(p);
  // One rank's share of the whole sequence's pairs (the mirrored layout makes shares equal).
  const double lg = double(p.seqlen_k) * n;
  const double pairs = p.causal ? lg * (lg + 1) / 2 / n : double(p.seqlen_q) * lg;
  const double flops = 4.0 * double(p.batch * p.heads_q * p.head_dim) * pairs;
  const double kv_bytes = 2.0 * 2.0 * double(p.batch * p.seqlen_k * p.heads_kv * p.head_dim);
  // Compute at ~550 TFLOP/s (cuda_fa3, a little less while NCCL holds some SMs) overlapped with
  // n - 1 shard transfers at ~120 GB/s per direction; per step a merge pass over the fp32
  // accumulator (~10 bytes per output element at 3 TB/s) and ~20 us of launches.
  const double merge = 10.0 * double(p.batch * p.seqlen_q * p.heads_q * p.head_dim) / 3e12;
  const double t = std::max(flops / 550e12, (n - 1) * kv_bytes / 120e9) + n * (merge + 20e-6);
  est->latency_s = t;
  est->energy_j = 600.0 * t;  // modelled: ~600 W for this rank's GPU
  est->rel_error = 0.0;
  return PFA_STATUS_OK;
}

bool grow(DeviceState::Buffer& b, size_t bytes) {
  if (b.bytes >= bytes) return true;
  cudaFree(b.ptr);
  b.ptr = nullptr;
  b.bytes = 0;
  if (cudaMalloc(&b.ptr, bytes) != cudaSuccess) return false;
  b.bytes = bytes;
  return true;
}

pfa_status cuda_failure(char* message, size_t capacity, const char* what, cudaError_t e) {
  write_message(message, capacity, "%s: %s", what, cudaGetErrorString(e));
  return e == cudaErrorMemoryAllocation ? PFA_STATUS_OUT_OF_MEMORY : PFA_STATUS_DEVICE_ERROR;
}

pfa_status nccl_failure(char* message, size_t capacity, const char* what, ncclResult_t r,
                        ncclComm_t comm) {
  write_message(message, capacity, "%s: %s (%s)", what, ncclGetErrorString(r),
                ncclGetLastError(comm));
  return PFA_STATUS_DEVICE_ERROR;
}

// The ring itself, on the current device, under the device's lock.
pfa_status run_ring(DeviceState& st, const pfa_run_args& args, ncclComm_t comm, int ranks, int rank,
                    char* message, size_t capacity) {
  const pfa_problem& p = *args.problem;
  const kernels::AttentionParams a = plugin::params_from_args(args);
  const auto stream = static_cast<cudaStream_t>(args.stream);
  const size_t el = 2;
  const size_t kv_elems = size_t(p.batch * p.seqlen_k * p.heads_kv * p.head_dim);
  const size_t kv_bytes = kv_elems * el;
  const size_t out_elems = size_t(p.batch * p.seqlen_q * p.heads_q * p.head_dim);
  const size_t lse_elems = size_t(p.batch * p.heads_q * p.seqlen_q);

  cudaError_t e = cudaSuccess;
  if (!st.ready) {
    if ((e = cudaStreamCreateWithFlags(&st.comm, cudaStreamNonBlocking)) != cudaSuccess ||
        (e = cudaEventCreateWithFlags(&st.inputs_ready, cudaEventDisableTiming)) != cudaSuccess ||
        (e = cudaEventCreateWithFlags(&st.kv_arrived, cudaEventDisableTiming)) != cudaSuccess ||
        (e = cudaEventCreateWithFlags(&st.compute_done, cudaEventDisableTiming)) != cudaSuccess) {
      return cuda_failure(message, capacity, "creating the ring's stream and events", e);
    }
    st.ready = true;
  }
  // Buffers may still be in use by the previous call's work: wait for it before freeing any.
  const bool must_grow = st.kv[0].bytes < 2 * kv_bytes || st.acc_out.bytes < out_elems * 4 ||
                         st.part_out.bytes < out_elems * el || st.acc_lse.bytes < lse_elems * 4;
  if (must_grow) {
    cudaStreamSynchronize(st.comm);
    cudaStreamSynchronize(stream);
    if (!grow(st.kv[0], 2 * kv_bytes) || !grow(st.kv[1], 2 * kv_bytes) ||
        !grow(st.acc_out, out_elems * 4) || !grow(st.acc_lse, lse_elems * 4) ||
        !grow(st.part_out, out_elems * el) || !grow(st.part_lse, lse_elems * 4)) {
      return cuda_failure(message, capacity, "allocating the ring's workspace",
                          cudaGetLastError());
    }
  }

  // The communication stream starts after everything the caller queued before this call.
  if ((e = cudaEventRecord(st.inputs_ready, stream)) != cudaSuccess ||
      (e = cudaStreamWaitEvent(st.comm, st.inputs_ready, 0)) != cudaSuccess) {
    return cuda_failure(message, capacity, "ordering the ring after the caller's stream", e);
  }
  const kc::MergeAccumulator acc{static_cast<float*>(st.acc_out.ptr),
                                 static_cast<float*>(st.acc_lse.ptr), p.batch, p.seqlen_q,
                                 p.heads_q, p.head_dim};
  const int next = (rank + 1) % ranks, prev = (rank + ranks - 1) % ranks;
  for (int step = 0; step < ranks; ++step) {
    const void* k = step == 0 ? a.k : st.kv[step % 2].ptr;
    const void* v = step == 0 ? a.v : static_cast<const char*>(st.kv[step % 2].ptr) + kv_bytes;
    if (step + 1 < ranks) {
      // Pass this shard on and take the next one while the kernel works on this one. The target
      // buffer was read by the previous step's kernel: wait for that kernel first.
      char* target = static_cast<char*>(st.kv[(step + 1) % 2].ptr);
      if (step > 0 && (e = cudaStreamWaitEvent(st.comm, st.compute_done, 0)) != cudaSuccess) {
        return cuda_failure(message, capacity, "ordering the ring's transfers", e);
      }
      ncclResult_t r = ncclGroupStart();
      if (r == ncclSuccess) r = ncclSend(k, kv_bytes, ncclChar, next, comm, st.comm);
      if (r == ncclSuccess) r = ncclSend(v, kv_bytes, ncclChar, next, comm, st.comm);
      if (r == ncclSuccess) r = ncclRecv(target, kv_bytes, ncclChar, prev, comm, st.comm);
      if (r == ncclSuccess) r = ncclRecv(target + kv_bytes, kv_bytes, ncclChar, prev, comm, st.comm);
      const ncclResult_t end = ncclGroupEnd();
      if (r == ncclSuccess) r = end;
      if (r != ncclSuccess) return nccl_failure(message, capacity, "ring send/receive", r, comm);
    }
    if (step > 0 && (e = cudaStreamWaitEvent(stream, st.kv_arrived, 0)) != cudaSuccess) {
      return cuda_failure(message, capacity, "waiting for the visiting shard", e);
    }
    if (step + 1 < ranks && (e = cudaEventRecord(st.kv_arrived, st.comm)) != cudaSuccess) {
      return cuda_failure(message, capacity, "marking the shard's arrival", e);
    }

    const auto s = sharding::ring_step(ranks, rank, step, p.seqlen_q, p.seqlen_k, p.causal != 0);
    kernels::AttentionParams b = a;
    b.q = static_cast<const char*>(a.q) + s.q_begin * a.q_stride[1] * int64_t(el);
    b.k = static_cast<const char*>(k) + s.kv_begin * a.k_stride[1] * int64_t(el);
    b.v = static_cast<const char*>(v) + s.kv_begin * a.v_stride[1] * int64_t(el);
    b.seqlen_q = s.q_rows;
    b.seqlen_k = s.kv_rows;
    b.causal = s.causal;
    b.out = st.part_out.ptr;
    b.lse = static_cast<float*>(st.part_lse.ptr);
    const int64_t qd = p.heads_q * p.head_dim;
    b.o_stride[0] = s.q_rows * qd, b.o_stride[1] = qd, b.o_stride[2] = p.head_dim;
    const kc::LaunchResult launched = kc::attention_forward(b, stream);
    if (!launched.ok()) {
      write_message(message, capacity, "ring step %d: %s", step, launched.message.c_str());
      return launched.status == kc::LaunchStatus::unsupported ? PFA_STATUS_UNSUPPORTED
                                                               : PFA_STATUS_DEVICE_ERROR;
    }
    const kc::PartialResult part{st.part_out.ptr, static_cast<const float*>(st.part_lse.ptr),
                                 s.q_begin, s.q_rows, a.dtype};
    if ((e = kc::merge_partial(acc, part, step == 0, stream)) != cudaSuccess ||
        (e = cudaEventRecord(st.compute_done, stream)) != cudaSuccess) {
      return cuda_failure(message, capacity, "merging a ring step", e);
    }
  }
  if ((e = kc::write_merged(acc, a.out, a.o_stride, a.dtype, a.lse, stream)) != cudaSuccess) {
    return cuda_failure(message, capacity, "writing the merged output", e);
  }
  return PFA_STATUS_OK;
}

pfa_status run(pfa_context* context, const pfa_run_args* args, pfa_run_result* result,
               char* message, size_t capacity) {
  if (context == nullptr || args == nullptr || args->problem == nullptr || args->q == nullptr ||
      args->k == nullptr || args->v == nullptr || args->out == nullptr)
    return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity, "null argument");
  Context& c = ctx(context);
  const pfa_problem& p = *args->problem;
  if (c.devices == 0) return fail(PFA_STATUS_UNSUPPORTED, message, capacity, c.no_device.c_str());
  if (!PFA_STRUCT_HAS(args, pfa_run_args, communicator) || args->communicator == nullptr)
    return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity,
                "a split problem needs the group's NCCL communicator");
  auto comm = static_cast<ncclComm_t>(args->communicator);
  int ranks = 0, rank = 0, comm_device = -1;
  ncclResult_t r = ncclCommCount(comm, &ranks);
  if (r == ncclSuccess) r = ncclCommUserRank(comm, &rank);
  if (r == ncclSuccess) r = ncclCommCuDevice(comm, &comm_device);
  if (r != ncclSuccess) return nccl_failure(message, capacity, "reading the communicator", r, comm);
  if (ranks != problem_ranks(p)) {
    write_message(message, capacity, "the communicator has %d ranks but the problem is split over %d",
                  ranks, problem_ranks(p));
    return PFA_STATUS_INVALID_ARGUMENT;
  }
  const int device = args->q->device.device_id;
  if (comm_device != device) {
    write_message(message, capacity, "the communicator's rank %d is on GPU %d but the tensors are on GPU %d",
                  rank, comm_device, device);
    return PFA_STATUS_INVALID_ARGUMENT;
  }
  // Shards travel as they are: they must be contiguous BSHD.
  const kernels::AttentionParams a = plugin::params_from_args(*args);
  const int64_t kd = p.heads_kv * p.head_dim;
  for (const int64_t* s : {a.k_stride, a.v_stride}) {
    if (s[2] != p.head_dim || s[1] != kd || s[0] != p.seqlen_k * kd)
      return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity,
                  "key and value shards must be contiguous BSHD tensors");
  }
  int previous = -1;
  cudaGetDevice(&previous);
  if (previous != device && cudaSetDevice(device) != cudaSuccess)
    return cuda_failure(message, capacity, "cudaSetDevice", cudaGetLastError());
  pfa_status status;
  {
    std::lock_guard lock(c.state[device].mutex);
    status = run_ring(c.state[device], *args, comm, ranks, rank, message, capacity);
  }
  if (previous >= 0 && previous != device) cudaSetDevice(previous);
  if (result != nullptr) {
    result->modelled_latency_s = 0.0;
    result->energy_j = -1.0;
    result->energy_measured = 0;
    result->error_estimate = 0.0;
    std::snprintf(result->detail, sizeof result->detail, "ring of %d", ranks);
  }
  return status;
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
  int nccl = 0;
  ncclGetVersion(&nccl);
  std::snprintf(info->name, sizeof info->name, "%s", name.c_str());
  std::snprintf(info->detail, sizeof info->detail, "%s, NCCL %d.%d.%d", detail.c_str(),
                nccl / 10000, (nccl / 100) % 100, nccl % 100);
  return PFA_STATUS_OK;
}

const pfa_plugin_api kApi = {
    sizeof(pfa_plugin_api),
    PFA_ABI_VERSION_MAJOR,
    PFA_ABI_VERSION_MINOR,
    "cuda_ring",
    "0.1.0",
    "ring attention over GPUs: NCCL moves key/value shards while cuda_fa3's kernel computes",
    PFA_PROP_THREAD_SAFE | PFA_PROP_DISTRIBUTED,
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
}  // namespace pfa::cuda_ring

PFA_PLUGIN_EXPORT pfa_status pfa_plugin_entry(const pfa_host_info* host, const pfa_plugin_api** api,
                                              char* message, size_t capacity) {
  return pfa::plugin::hand_out_table(host, api, pfa::cuda_ring::kApi, message, capacity);
}

// torch_sdpa: LibTorch's scaled_dot_product_attention behind the pfa plugin ABI. This file is the
// ABI glue (entry symbol, context, capability and cost questions); torch_sdpa_compute.cpp does
// the attention. Nothing thrown inside LibTorch crosses the ABI: every call catches and returns a
// status with the message.
#include "torch_sdpa_compute.h"

#include <plugin_support.h>

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

#if defined(PFA_TORCH_CUDA)
#include <c10/cuda/CUDAFunctions.h>
#include <cuda_runtime_api.h>
#endif

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

// One source, four plugins (plugins/torch_sdpa/CMakeLists.txt): PFA_SDPA_PATH picks the kernel
// (torch_sdpa_compute.h, Path) and PFA_SDPA_NAME the plugin's name.
#ifndef PFA_SDPA_PATH
#define PFA_SDPA_PATH 0
#endif
#ifndef PFA_SDPA_NAME
#define PFA_SDPA_NAME "torch_sdpa"
#endif

namespace pfa::torch_sdpa {

namespace {

constexpr Path kPath = static_cast<Path>(PFA_SDPA_PATH);

using plugin::fail;
using plugin::write_message;

// Everything the plugin knows, owned by the context the host creates; no globals.
struct TorchContext {
  int threads = 1;        // LibTorch intra-op threads, set once at create()
  bool cpu_fp16 = false;  // this LibTorch multiplies fp16 matrices on the CPU
  int cuda_devices = 0;   // CUDA devices LibTorch sees (0 on a build without CUDA)
  std::vector<int> sm;    // compute capability per CUDA device, major * 10 + minor
  std::string cpu_name;
  std::string cudnn;      // "cuDNN 9.19.0" or empty
};

TorchContext& context_of(pfa_context* context) { return *reinterpret_cast<TorchContext*>(context); }

// The cores this process may run on (affinity, not the host's total), or PFA_TORCH_THREADS.
int wanted_threads() {
  if (const char* env = std::getenv("PFA_TORCH_THREADS"); env != nullptr && std::atoi(env) > 0) {
    return std::atoi(env);
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        const auto start = line.find_first_not_of(" \t", colon + 1);
        return start == std::string::npos ? std::string() : line.substr(start);
      }
    }
  }
  return "unknown CPU";
}

// Turns whatever LibTorch threw into a status and a message for the host.
pfa_status status_of_current_exception(char* message, size_t capacity) {
  try {
    throw;
  } catch (const c10::OutOfMemoryError& e) {
    write_message(message, capacity, "out of memory: %s", e.what_without_backtrace());
    return PFA_STATUS_OUT_OF_MEMORY;
  } catch (const c10::Error& e) {
    const char* text = e.what_without_backtrace();
    write_message(message, capacity, "%s", text);
    return std::strstr(text, "CUDA") != nullptr ? PFA_STATUS_DEVICE_ERROR : PFA_STATUS_INTERNAL;
  } catch (const std::bad_alloc&) {
    write_message(message, capacity, "out of host memory");
    return PFA_STATUS_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    write_message(message, capacity, "%s", e.what());
    return PFA_STATUS_INTERNAL;
  } catch (...) {
    write_message(message, capacity, "unknown exception inside LibTorch");
    return PFA_STATUS_INTERNAL;
  }
}

pfa_status create(const pfa_host_info* /*host*/, pfa_context** context, char* message,
                  size_t capacity) {
  if (context == nullptr) return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity, "no context");
  try {
    auto ctx = std::make_unique<TorchContext>();
    ctx->threads = wanted_threads();
    // LibTorch starts with one intra-op thread on some builds: a baseline must use every core.
    if (at::get_num_threads() != ctx->threads) {
      try {
        at::set_num_threads(ctx->threads);
      } catch (const std::exception&) {
        // The native thread pool refuses once it has run; keep what it has.
      }
    }
    ctx->threads = at::get_num_threads();
    ctx->cpu_fp16 = cpu_supports_fp16();
    ctx->cpu_name = cpu_model();
#if defined(PFA_TORCH_CUDA)
    ctx->cuda_devices = static_cast<int>(c10::cuda::device_count());
    for (int i = 0; i < ctx->cuda_devices; ++i) {
      int major = 0, minor = 0;
      if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, i) != cudaSuccess ||
          cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, i) != cudaSuccess) {
        cudaGetLastError();
        major = minor = 0;
      }
      ctx->sm.push_back(major * 10 + minor);
    }
    ctx->cudnn = cudnn_version_text();
#endif
    *context = reinterpret_cast<pfa_context*>(ctx.release());
    return PFA_STATUS_OK;
  } catch (...) {
    return status_of_current_exception(message, capacity);
  }
}

void destroy(pfa_context* context) { delete reinterpret_cast<TorchContext*>(context); }

pfa_status supports(pfa_context* context, const pfa_problem* problem, char* reason,
                    size_t capacity) {
  if (context == nullptr || problem == nullptr) {
    return fail(PFA_STATUS_INVALID_ARGUMENT, reason, capacity, "no context or no problem");
  }
  const TorchContext& ctx = context_of(context);
  const pfa_problem& p = *problem;
  if (p.dtype != PFA_DTYPE_FP32 && p.dtype != PFA_DTYPE_FP16 && p.dtype != PFA_DTYPE_BF16) {
    write_message(reason, capacity, "unknown dtype %d", p.dtype);
    return PFA_STATUS_UNSUPPORTED;
  }
  if (kPath != Path::automatic && p.device_type != kDLCUDA) {
    write_message(reason, capacity,
                  "%s calls PyTorch's %s kernel, which serves CUDA tensors only; torch_sdpa "
                  "serves the CPU",
                  PFA_SDPA_NAME, path_name(kPath));
    return PFA_STATUS_UNSUPPORTED;
  }
  if (p.device_type == kDLCPU) {
    if (p.dtype == PFA_DTYPE_FP16 && !ctx.cpu_fp16) {
      write_message(reason, capacity,
                    "%s has no fp16 matrix product on the CPU (\"bmm\" not implemented for "
                    "'Half'); use fp32 or bf16",
                    torch_version_text());
      return PFA_STATUS_UNSUPPORTED;
    }
    return PFA_STATUS_OK;
  }
  if (p.device_type == kDLCUDA) {
#if defined(PFA_TORCH_CUDA)
    if (p.device_id < 0 || p.device_id >= ctx.cuda_devices) {
      write_message(reason, capacity, "no CUDA device %d (LibTorch sees %d)", p.device_id,
                    ctx.cuda_devices);
      return PFA_STATUS_UNSUPPORTED;
    }
    const std::string refusal =
        path_refusal(kPath, p, ctx.sm[static_cast<size_t>(p.device_id)]);
    if (!refusal.empty()) {
      write_message(reason, capacity, "%s", refusal.c_str());
      return PFA_STATUS_UNSUPPORTED;
    }
    return PFA_STATUS_OK;
#else
    const std::string refusal = path_refusal(kPath, p, 0);
    write_message(reason, capacity, "%s",
                  refusal.empty() ? (std::string(torch_version_text()) + " was built without CUDA").c_str()
                                  : refusal.c_str());
    return PFA_STATUS_UNSUPPORTED;
#endif
  }
  write_message(reason, capacity, "torch_sdpa serves CPU and CUDA tensors only (device type %d)",
                p.device_type);
  return PFA_STATUS_UNSUPPORTED;
}

// Roofline prior, fitted to measurements: LibTorch 1.13 on 2 cores of a Xeon with AMX (fp32
// through OpenBLAS, bf16 through oneDNN, scores materialised, nothing gained from causal masks);
// LibTorch 2.11 on 16 cores of the same Xeon family (flash kernel on the CPU) and on an H100
// (cuDNN / flash for fp16 and bf16, memory-efficient for fp32). The LSE path is fp32 math.
pfa_status estimate(pfa_context* context, const pfa_problem* problem, pfa_estimate* estimate,
                    char* message, size_t capacity) {
  if (context == nullptr || problem == nullptr || estimate == nullptr) {
    return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity, "no context, problem or estimate");
  }
  const TorchContext& ctx = context_of(context);
  const pfa_problem& p = *problem;
  const double b = static_cast<double>(p.batch), hq = static_cast<double>(p.heads_q);
  const double hkv = static_cast<double>(p.heads_kv), d = static_cast<double>(p.head_dim);
  const double lk = static_cast<double>(p.seqlen_k);
  // Rows that see no key (causal, Lq > Lk) are skipped: the rest is square.
  const double lq = static_cast<double>(p.causal && p.seqlen_q > p.seqlen_k ? p.seqlen_k
                                                                           : p.seqlen_q);
  const bool square_causal = p.causal && lq == lk;
  const double element = p.dtype == PFA_DTYPE_FP32 ? 4.0 : 2.0;
  const double full_flops = 4.0 * b * hq * lq * lk * d;
  const double io_bytes = element * d * b * (2.0 * hq * lq + 2.0 * hkv * lk);
  const double score_bytes = 4.0 * b * hq * lq * lk;  // one pass over fp32 scores
  double latency = 0, watts = 0;
  if (p.device_type == kDLCUDA) {
    const bool half = p.dtype != PFA_DTYPE_FP32;
    double flops = square_causal ? full_flops / 2 : full_flops;
    // bf16 forward on an H100 with LibTorch 2.11 (shared/device/README.md): cuDNN 490-725
    // TFLOP/s, flash 300-340, memory-efficient 135-175; PyTorch's own order takes flash there.
    double rate = !half                        ? 40e12
                  : kPath == Path::cudnn       ? 550e12
                  : kPath == Path::efficient   ? 150e12
                                               : 310e12;
    double bytes = io_bytes;
    // cuDNN and memory-efficient get grouped K/V heads expanded: one more pass over K and V.
    if ((kPath == Path::cudnn || kPath == Path::efficient) && p.heads_q > p.heads_kv) {
      bytes += 2.0 * element * d * b * 2.0 * hq * lk;
    }
    if (p.want_lse) {  // two fp32 GEMMs and a few passes over materialised scores
      flops = full_flops;
      rate = 15e12;
      bytes += 6.0 * score_bytes;
    }
    latency = 45e-6 + std::max(flops / rate, bytes / 3.0e12);
    watts = 600;
  } else {
    const double threads = std::max(1, ctx.threads);
#if TORCH_VERSION_MAJOR >= 2
    double per_thread = p.dtype == PFA_DTYPE_BF16 ? 150e9 : 55e9;
    double flops = square_causal ? 0.8 * full_flops : full_flops;
    double bytes = io_bytes;
#else
    double per_thread = p.dtype == PFA_DTYPE_BF16 ? 60e9 : 30e9;
    double flops = full_flops;
    double bytes = io_bytes + 4.0 * score_bytes;
#endif
    if (p.want_lse) {
      per_thread = 15e9;
      flops = full_flops;
      bytes = io_bytes + 6.0 * score_bytes;
    }
    latency = 50e-6 + flops / (threads * per_thread) + bytes / (threads * 6e9);
    watts = 8.0 * threads;
  }
  estimate->latency_s = latency;
  if (PFA_STRUCT_HAS(estimate, pfa_estimate, energy_j)) estimate->energy_j = watts * latency;
  if (PFA_STRUCT_HAS(estimate, pfa_estimate, rel_error)) estimate->rel_error = 0.0;
  return PFA_STATUS_OK;
}

pfa_status run(pfa_context* context, const pfa_run_args* args, pfa_run_result* result,
               char* message, size_t capacity) {
  if (context == nullptr || args == nullptr || args->problem == nullptr || args->q == nullptr ||
      args->k == nullptr || args->v == nullptr || args->out == nullptr) {
    return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity,
                "run() needs a context, a problem and q, k, v, out");
  }
  if (args->problem->want_lse && args->lse == nullptr) {
    return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity,
                "the problem asks for the log-sum-exp but no lse tensor was passed");
  }
  char detail[64] = {0};
  try {
    compute_attention(*args, kPath, detail, sizeof detail);
  } catch (...) {
    return status_of_current_exception(message, capacity);
  }
  if (result != nullptr) {
    if (PFA_STRUCT_HAS(result, pfa_run_result, modelled_latency_s)) result->modelled_latency_s = 0;
    if (PFA_STRUCT_HAS(result, pfa_run_result, energy_j)) result->energy_j = -1;
    if (PFA_STRUCT_HAS(result, pfa_run_result, energy_measured)) result->energy_measured = 0;
    if (PFA_STRUCT_HAS(result, pfa_run_result, error_estimate)) result->error_estimate = 0;
    if (PFA_STRUCT_HAS(result, pfa_run_result, detail)) {
      std::memcpy(result->detail, detail, sizeof detail);
    }
  }
  return PFA_STATUS_OK;
}

pfa_status device_info(pfa_context* context, int32_t device_type, int32_t device_id,
                       pfa_device_info* info, char* message, size_t capacity) {
  if (context == nullptr || info == nullptr) {
    return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity, "no context or no info");
  }
  const TorchContext& ctx = context_of(context);
  if (device_type == kDLCPU) {
    write_message(info->name, sizeof info->name, "%s", ctx.cpu_name.c_str());
    write_message(info->detail, sizeof info->detail, "%s, %d threads, fp16 matmul %s",
                  torch_version_text(), ctx.threads, ctx.cpu_fp16 ? "yes" : "no");
    return PFA_STATUS_OK;
  }
#if defined(PFA_TORCH_CUDA)
  if (device_type == kDLCUDA && device_id >= 0 && device_id < ctx.cuda_devices) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, device_id) != cudaSuccess) {
      write_message(message, capacity, "cudaGetDeviceProperties failed for device %d", device_id);
      return PFA_STATUS_DEVICE_ERROR;
    }
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    write_message(info->name, sizeof info->name, "%s", prop.name);
    // The device fingerprint the store keeps: architecture, SM count, driver, runtime, cuDNN
    // and LibTorch versions.
    write_message(info->detail, sizeof info->detail,
                  "sm_%d%d, %d SMs, driver %d.%d, runtime %d.%d, %s, %s", prop.major, prop.minor,
                  prop.multiProcessorCount, driver / 1000, (driver % 1000) / 10, runtime / 1000,
                  (runtime % 1000) / 10, ctx.cudnn.empty() ? "no cuDNN" : ctx.cudnn.c_str(),
                  torch_version_text());
    return PFA_STATUS_OK;
  }
#endif
  write_message(message, capacity, "torch_sdpa does not serve device type %d id %d", device_type,
                device_id);
  return PFA_STATUS_UNSUPPORTED;
}

constexpr uint32_t kDeviceTypes = (1u << kDLCPU)
#if defined(PFA_TORCH_CUDA)
                                  | (1u << kDLCUDA)
#endif
    ;

const pfa_plugin_api kApi = {
    sizeof(pfa_plugin_api),
    PFA_ABI_VERSION_MAJOR,
    PFA_ABI_VERSION_MINOR,
    PFA_SDPA_NAME,
    "0.1.0",
#if PFA_SDPA_PATH == 0
    "LibTorch " TORCH_VERSION " scaled_dot_product_attention on CPU"
#if defined(PFA_TORCH_CUDA)
    " and CUDA"
#endif
#elif PFA_SDPA_PATH == 1
    "LibTorch " TORCH_VERSION " flash-attention kernel (_scaled_dot_product_flash_attention), CUDA"
#elif PFA_SDPA_PATH == 2
    "LibTorch " TORCH_VERSION " cuDNN attention kernel (_scaled_dot_product_cudnn_attention), CUDA"
#else
    "LibTorch " TORCH_VERSION " memory-efficient attention kernel "
    "(_scaled_dot_product_efficient_attention), CUDA"
#endif
    ,
    PFA_PROP_THREAD_SAFE,
    kPath == Path::automatic ? kDeviceTypes : (1u << kDLCUDA),
    &create,
    &destroy,
    &supports,
    &estimate,
    &run,
    &device_info,
    nullptr,
};

}  // namespace

}  // namespace pfa::torch_sdpa

PFA_PLUGIN_EXPORT pfa_status pfa_plugin_entry(const pfa_host_info* host, const pfa_plugin_api** api,
                                              char* message, size_t capacity) {
  return pfa::plugin::hand_out_table(host, api, pfa::torch_sdpa::kApi, message, capacity);
}

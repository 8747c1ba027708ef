// Forward attention on NVIDIA GPUs: a FlashAttention-3-style kernel on Hopper (sm_90a), a
// FlashAttention-2-style mma.sync kernel on cc 8.0+ (Ampere, Ada, and Hopper shapes the sm_90a
// kernel skips), and a simple fallback for the rest. Raw pointers in (AttentionParams), work
// queued on the caller's stream, never a synchronisation; errors come back as values with the
// CUDA error text.
#pragma once

#include <pfa/kernels/attention_params.h>

#include <cuda_runtime_api.h>

#include <string>

namespace pfa::kernels::cuda {

enum class Path : int {
  automatic = 0,  // sm_90a kernel where it applies, else the sm80 kernel, else the fallback
  sm90 = 1,       // sm_90a kernel only (unsupported otherwise)
  fallback = 2,   // the simple kernel, any CUDA device
  sm80 = 3        // mma.sync kernel only (cc >= 8.0; unsupported otherwise)
};

struct LaunchOptions {
  Path path = Path::automatic;
  int sm90_variant = -1;  // -1: chosen by shape; else an index (benchmarks, tests)
  // sm_90a launch: -1 chosen by shape; 0 one CTA per query tile; 1 one CTA per SM walking the
  // tiles (query block fastest, so K/V stay in L2); 2 the same walking the heaviest causal
  // tiles of every head first (balance when K/V of all heads fit in L2).
  int persistent = -1;
};

enum class LaunchStatus : int { ok = 0, unsupported = 1, device_error = 2 };

struct LaunchResult {
  LaunchStatus status = LaunchStatus::ok;
  std::string message;           // why, when not ok
  const char* path = "none";     // which kernel ran
  bool ok() const { return status == LaunchStatus::ok; }
};

// Empty when the kernels can serve this problem on a device of compute capability
// (cc_major, cc_minor) by `path`; otherwise the reason. Looks at shapes, dtype and strides only
// (pointers are checked at launch, where a misaligned one falls back or is refused).
std::string unsupported_reason(const AttentionParams& p, int cc_major, int cc_minor,
                               Path path = Path::automatic);

// Queues the attention on `stream` (of the current device). No synchronisation.
LaunchResult attention_forward(const AttentionParams& p, cudaStream_t stream,
                               const LaunchOptions& options = {});

// sm_90a variants compiled for a head dim (count, names, the choice `automatic` makes).
int sm90_variant_count();
int sm90_default_variant(int head_dim, int64_t seqlen_k = 8192, bool causal = false);
int sm90_default_persistent(int head_dim, int64_t seqlen_k = 8192, bool causal = false);
std::string sm90_variant_name(int head_dim, bool bf16, int variant);

// "NVIDIA H100 80GB HBM3, sm_90, driver 13.0, runtime 13.0" for `device`; the CUDA error text
// when there is none.
std::string describe_device(int device, std::string* name = nullptr);

}  // namespace pfa::kernels::cuda

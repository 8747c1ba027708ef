// cpu_flash: the ABI adapter for kernels/cpu. Checks the problem, turns the ABI tensors into
// AttentionParams, runs the kernel on oneTBB's threads and says which instruction-set path ran.
#include <pfa/kernels/cpu/cpu_info.h>
#include <pfa/kernels/cpu/flash_attention.h>
#include <pfa/plugin_abi.h>

#include <plugin_support.h>

#include <tbb/info.h>

#include <algorithm>
#include <exception>
#include <new>

namespace {

namespace cpu = pfa::kernels::cpu;
using pfa::kernels::DType;
using pfa::plugin::fail;
using pfa::plugin::write_message;

struct pfa_context_impl {};

// Sustained GFLOP/s per core of each path on long sequences, B=1 H=8 D=64/128 (bench/cpu/NOTES.md,
// Xeon with AVX-512 and AMX at 2.6 GHz, measured as FLOPs per core-second). The router's prior
// before any record exists; the learned model replaces it once runs are recorded.
double gflops_per_core(cpu::Isa isa, int64_t head_dim) {
  const bool small_d = head_dim < 96;
  switch (isa) {
    case cpu::Isa::scalar: return 8.0;
    case cpu::Isa::avx2: return 88.0;
    case cpu::Isa::avx512: return small_d ? 130.0 : 140.0;
    case cpu::Isa::avx512_bf16: return 100.0;
    case cpu::Isa::amx: return small_d ? 550.0 : 650.0;
  }
  return 8.0;
}

constexpr double kCallOverheadS = 20e-6;      // task spawn, buffers, packing set-up
constexpr double kPackBytesPerSecond = 4e9;   // converting/packing K and V, per core
constexpr double kShortRowPenalty = 64.0;     // tiles shorter than a block waste the block

pfa_status create(const pfa_host_info*, pfa_context** context, char* message, size_t capacity) {
  try {
    *context = reinterpret_cast<pfa_context*>(new pfa_context_impl());
    return PFA_STATUS_OK;
  } catch (const std::bad_alloc&) {
    return fail(PFA_STATUS_OUT_OF_MEMORY, message, capacity, "cpu_flash: out of memory");
  }
}

void destroy(pfa_context* context) { delete reinterpret_cast<pfa_context_impl*>(context); }

pfa_status supports(pfa_context*, const pfa_problem* p, char* reason, size_t capacity) {
  if (p->device_type != kDLCPU)
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity, "cpu_flash runs on the CPU only");
  if (p->dtype != PFA_DTYPE_FP32 && p->dtype != PFA_DTYPE_FP16 && p->dtype != PFA_DTYPE_BF16)
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity, "cpu_flash takes fp32, fp16 or bf16");
  if (p->head_dim < 1 || p->head_dim > 256) {
    write_message(reason, capacity, "cpu_flash takes head_dim 1..256, not %lld",
                  static_cast<long long>(p->head_dim));
    return PFA_STATUS_UNSUPPORTED;
  }
  if (p->batch < 1 || p->heads_q < 1 || p->heads_kv < 1 || p->seqlen_q < 1 || p->seqlen_k < 1)
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity, "cpu_flash needs non-empty sizes");
  if (p->heads_q % p->heads_kv != 0)
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity,
                "cpu_flash needs heads_q to be a multiple of heads_kv");
  return PFA_STATUS_OK;
}

pfa_status estimate(pfa_context* context, const pfa_problem* p, pfa_estimate* e, char* message,
                    size_t capacity) {
  if (supports(context, p, message, capacity) != PFA_STATUS_OK) return PFA_STATUS_UNSUPPORTED;
  cpu::Isa isa = cpu::best_isa(static_cast<DType>(p->dtype));
  if (isa == cpu::Isa::amx && p->seqlen_q <= 8) isa = cpu::Isa::avx512;  // as flash_attention()
  const double threads = std::max(1, tbb::info::default_concurrency());
  // Visible query/key pairs (bottom-right causal); short rows still cost a whole key block.
  const double lq = static_cast<double>(p->seqlen_q), lk = static_cast<double>(p->seqlen_k);
  double pairs = lq * lk;
  if (p->causal) {
    // Row i sees clamp(i + c, 0, lk) keys with c = lk - lq + 1: a ramp, then the last row full.
    const double c = lk - lq + 1, first = std::max(0.0, 1.0 - c), last = lq - 1;
    pairs = lk + (last > first ? (last - first) * c + (first + last - 1) * (last - first) / 2 : 0);
  }
  const double padded = std::max(pairs, lq * std::min(lk, kShortRowPenalty));
  const double flops = 4.0 * p->batch * p->heads_q * padded * p->head_dim;
  const double elem = p->dtype == PFA_DTYPE_FP32 ? 4.0 : 2.0;
  const double pack_bytes = 2.0 * p->batch * p->heads_kv * lk * p->head_dim * elem;
  const double parallel = std::min(threads, static_cast<double>(p->batch * p->heads_q) *
                                                std::max(1.0, lq / 16.0));
  e->latency_s = kCallOverheadS + pack_bytes / (kPackBytesPerSecond * threads) +
                 flops / (gflops_per_core(isa, p->head_dim) * 1e9 * std::max(1.0, parallel));
  e->energy_j = -1.0;
  e->rel_error = 0.0;
  return PFA_STATUS_OK;
}

pfa_status run(pfa_context*, const pfa_run_args* args, pfa_run_result* result, char* message,
               size_t capacity) {
  if (args == nullptr || args->problem == nullptr)
    return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity, "cpu_flash: no problem given");
  if (supports(nullptr, args->problem, message, capacity) != PFA_STATUS_OK)
    return PFA_STATUS_UNSUPPORTED;
  try {
    const cpu::Isa ran = cpu::flash_attention(pfa::plugin::params_from_args(*args));
    if (result != nullptr) {
      result->modelled_latency_s = 0.0;
      result->energy_j = -1.0;
      result->energy_measured = 0;
      result->error_estimate = 0.0;
      write_message(result->detail, sizeof result->detail, "%s", cpu::isa_name(ran));
    }
    return PFA_STATUS_OK;
  } catch (const std::bad_alloc&) {
    return fail(PFA_STATUS_OUT_OF_MEMORY, message, capacity, "cpu_flash: out of memory");
  } catch (const std::exception& e) {
    write_message(message, capacity, "cpu_flash: %s", e.what());
    return PFA_STATUS_INVALID_ARGUMENT;
  }
}

pfa_status device_info(pfa_context*, int32_t device_type, int32_t, pfa_device_info* info,
                       char* message, size_t capacity) {
  if (device_type != kDLCPU)
    return fail(PFA_STATUS_UNSUPPORTED, message, capacity, "cpu_flash serves the CPU only");
  write_message(info->name, sizeof info->name, "%s", cpu::cpu_model_name());
  write_message(info->detail, sizeof info->detail, "fp32:%s bf16:%s %d threads",
                cpu::isa_name(cpu::best_isa(DType::fp32)),
                cpu::isa_name(cpu::best_isa(DType::bf16)), tbb::info::default_concurrency());
  return PFA_STATUS_OK;
}

const pfa_plugin_api kApi = {
    sizeof(pfa_plugin_api),
    PFA_ABI_VERSION_MAJOR,
    PFA_ABI_VERSION_MINOR,
    "cpu_flash",
    "0.1.0",
    "tiled online-softmax attention on the CPU (oneTBB, AVX2/AVX-512/AMX)",
    PFA_PROP_THREAD_SAFE,
    1u << kDLCPU,
    &create,
    &destroy,
    &supports,
    &estimate,
    &run,
    &device_info,
    nullptr,
};

}  // namespace

PFA_PLUGIN_EXPORT pfa_status pfa_plugin_entry(const pfa_host_info* host,
                                              const pfa_plugin_api** api, char* message,
                                              size_t capacity) {
  return pfa::plugin::hand_out_table(host, api, kApi, message, capacity);
}

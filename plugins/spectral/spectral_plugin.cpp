// spectral: Fourier-domain attention (research/spectral) behind the pfa plugin ABI, CPU only.
//
// Two modes, chosen at create():
//   lowpass (default)  spectral low-pass attention: keeps the lowest Fourier modes of K and V in
//                      blocks along the sequence and attends over the pseudo-tokens they leave;
//                      approximates softmax attention and is exact when modes >= block.
//   fnet               FNet token mixing, Re(DFT_seq(DFT_hidden(V))). It replaces attention and
//                      does not approximate it: its prior error (2.0) keeps the router away unless
//                      the caller's budget says accuracy does not matter.
// Every run compares a sample of rows with exact attention and reports that measured error as
// run_result.error_estimate.
//
// Settings:
//   PFA_SPECTRAL_MODE        lowpass | fnet (default lowpass)
//   PFA_SPECTRAL_MODES       Fourier modes kept per block (default 64, 1..65536)
//   PFA_SPECTRAL_BLOCK       tokens per block (default 256; 0 = the whole key sequence)
//   PFA_SPECTRAL_CHECK_ROWS  rows per call compared with exact attention (default 32, 0 = off)
#include "env_config.h"

#include <plugin_support.h>
#include <pfa/research/sampled_error.h>
#include <pfa/research/spectral.h>

#include <tbb/info.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>

namespace pfa::spectral_plugin {

namespace {

using plugin::fail;
using plugin::write_message;

struct Context {
  bool fnet = false;
  research::SpectralConfig config;
  int64_t check_rows = 32;
  int threads = 1;
  std::string cpu_name;
};

Context& ctx_of(pfa_context* c) { return *reinterpret_cast<Context*>(c); }

pfa_status create(const pfa_host_info*, pfa_context** context, char* message, size_t capacity) {
  if (context == nullptr) return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity, "no context");
  try {
    auto ctx = std::make_unique<Context>();
    std::string error;
    if (const char* mode = std::getenv("PFA_SPECTRAL_MODE"); mode != nullptr && *mode != '\0') {
      if (std::strcmp(mode, "fnet") == 0) {
        ctx->fnet = true;
      } else if (std::strcmp(mode, "lowpass") != 0) {
        write_message(message, capacity, "PFA_SPECTRAL_MODE='%s' is neither 'lowpass' nor 'fnet'",
                      mode);
        return PFA_STATUS_INVALID_ARGUMENT;
      }
    }
    if (!plugin::env_int("PFA_SPECTRAL_MODES", 1, 65536, &ctx->config.modes, &error) ||
        !plugin::env_int("PFA_SPECTRAL_BLOCK", 0, 1 << 24, &ctx->config.block, &error) ||
        !plugin::env_int("PFA_SPECTRAL_CHECK_ROWS", 0, 4096, &ctx->check_rows, &error)) {
      return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity, error.c_str());
    }
    ctx->threads = tbb::info::default_concurrency();
    ctx->cpu_name = plugin::cpu_model_name();
    *context = reinterpret_cast<pfa_context*>(ctx.release());
    return PFA_STATUS_OK;
  } catch (const std::bad_alloc&) {
    return fail(PFA_STATUS_OUT_OF_MEMORY, message, capacity, "out of host memory");
  }
}

void destroy(pfa_context* context) { delete reinterpret_cast<Context*>(context); }

pfa_status supports(pfa_context* context, const pfa_problem* problem, char* reason,
                    size_t capacity) {
  if (context == nullptr || problem == nullptr) {
    return fail(PFA_STATUS_INVALID_ARGUMENT, reason, capacity, "no context or no problem");
  }
  const Context& ctx = ctx_of(context);
  const pfa_problem& p = *problem;
  if (p.device_type != kDLCPU) {
    write_message(reason, capacity, "spectral runs on the CPU only (device type %d)",
                  p.device_type);
    return PFA_STATUS_UNSUPPORTED;
  }
  if (p.dtype != PFA_DTYPE_FP32 && p.dtype != PFA_DTYPE_FP16 && p.dtype != PFA_DTYPE_BF16) {
    write_message(reason, capacity, "unknown dtype %d", p.dtype);
    return PFA_STATUS_UNSUPPORTED;
  }
  if (p.seqlen_k > (int64_t{1} << 30) || p.head_dim > (int64_t{1} << 20)) {
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity, "sequence or head_dim too long for FFTs");
  }
  if (ctx.fnet) {
    if (p.causal) {
      return fail(PFA_STATUS_UNSUPPORTED, reason, capacity,
                  "fnet mode: a 2-D DFT mixes every token with every other, so no causal mask");
    }
    if (p.want_lse) {
      return fail(PFA_STATUS_UNSUPPORTED, reason, capacity,
                  "fnet mode has no softmax and so no log-sum-exp");
    }
    if (p.seqlen_q != p.seqlen_k) {
      return fail(PFA_STATUS_UNSUPPORTED, reason, capacity,
                  "fnet mode mixes one sequence with itself: needs seqlen_q == seqlen_k");
    }
  }
  return PFA_STATUS_OK;
}

pfa_status estimate(pfa_context* context, const pfa_problem* problem, pfa_estimate* estimate,
                    char* message, size_t capacity) {
  if (context == nullptr || problem == nullptr || estimate == nullptr) {
    return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity, "no context, problem or estimate");
  }
  const Context& ctx = ctx_of(context);
  const pfa_problem& p = *problem;
  const double b = static_cast<double>(p.batch), d = static_cast<double>(p.head_dim);
  const double lk = static_cast<double>(p.seqlen_k), lq = static_cast<double>(p.seqlen_q);
  const double hq = static_cast<double>(p.heads_q), hkv = static_cast<double>(p.heads_kv);
  double flops = 0, rel = 0;
  if (ctx.fnet) {
    // Two FFT passes over each value head: about 5 N log2 N per transform.
    flops = b * hkv * (lk * 5.0 * d * std::log2(std::max(2.0, d)) +
                       d * 5.0 * lk * std::log2(std::max(2.0, lk)));
    rel = research::fnet_expected_error();
  } else {
    const double block = ctx.config.block == 0 ? lk : std::min<double>(ctx.config.block, lk);
    const double kept = std::min<double>(ctx.config.modes, block) / block;
    // FFTs per block and dimension, then each query scores the pseudo-tokens it sees (about half
    // of them under a causal mask, plus half a block read token by token).
    const double fft = b * hkv * d * lk * 5.0 * std::log2(std::max(2.0, block));
    const double keys_per_query = p.causal ? 0.5 * lk * kept + 0.5 * block : lk * kept;
    flops = fft + 4.0 * b * hq * lq * keys_per_query * d;
    const double spread = static_cast<double>(p.softmax_scale) * std::sqrt(d);
    rel = research::spectral_expected_error(ctx.config, p.seqlen_k, p.causal != 0, p.seqlen_q,
                                            spread);
  }
  const double rows = std::min<double>(ctx.check_rows, b * hq * lq);
  const double check = 2.0 * rows * lk * d / 1e9;
  estimate->latency_s = 30e-6 + flops / (4e9 * std::max(1, ctx.threads)) + check;
  if (PFA_STRUCT_HAS(estimate, pfa_estimate, energy_j)) estimate->energy_j = -1;
  if (PFA_STRUCT_HAS(estimate, pfa_estimate, rel_error)) estimate->rel_error = rel;
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
  const Context& ctx = ctx_of(context);
  char reason[256] = {0};
  if (supports(context, args->problem, reason, sizeof reason) != PFA_STATUS_OK) {
    return fail(PFA_STATUS_UNSUPPORTED, message, capacity, reason);
  }
  double measured = -1;
  try {
    const auto params = plugin::params_from_args(*args);
    if (ctx.fnet) {
      research::fnet_mixing(params);
    } else {
      research::spectral_attention(params, ctx.config);
    }
    if (ctx.check_rows > 0) measured = research::sampled_error(params, ctx.check_rows).rel_error;
  } catch (const std::bad_alloc&) {
    return fail(PFA_STATUS_OUT_OF_MEMORY, message, capacity, "out of host memory");
  } catch (const std::exception& e) {
    return fail(PFA_STATUS_INTERNAL, message, capacity, e.what());
  }
  if (result != nullptr) {
    if (PFA_STRUCT_HAS(result, pfa_run_result, modelled_latency_s)) result->modelled_latency_s = 0;
    if (PFA_STRUCT_HAS(result, pfa_run_result, energy_j)) result->energy_j = -1;
    if (PFA_STRUCT_HAS(result, pfa_run_result, energy_measured)) result->energy_measured = 0;
    if (PFA_STRUCT_HAS(result, pfa_run_result, error_estimate)) {
      pfa_estimate prior{};
      prior.struct_size = sizeof prior;
      estimate(context, args->problem, &prior, nullptr, 0);
      result->error_estimate = measured >= 0 ? measured : prior.rel_error;
    }
    if (PFA_STRUCT_HAS(result, pfa_run_result, measured_rel_error)) {
      result->measured_rel_error = measured;
    }
    if (PFA_STRUCT_HAS(result, pfa_run_result, detail)) {
      if (ctx.fnet) {
        write_message(result->detail, sizeof result->detail, "fnet");
      } else {
        write_message(result->detail, sizeof result->detail, "lowpass modes=%lld block=%lld",
                      static_cast<long long>(ctx.config.modes),
                      static_cast<long long>(ctx.config.block));
      }
    }
  }
  return PFA_STATUS_OK;
}

pfa_status device_info(pfa_context* context, int32_t device_type, int32_t device_id,
                       pfa_device_info* info, char* message, size_t capacity) {
  if (context == nullptr || info == nullptr) {
    return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity, "no context or no info");
  }
  if (device_type != kDLCPU) {
    write_message(message, capacity, "spectral serves the CPU only, not device type %d id %d",
                  device_type, device_id);
    return PFA_STATUS_UNSUPPORTED;
  }
  const Context& ctx = ctx_of(context);
  // An older host passes a shorter struct: write only the fields it has room for.
  if (PFA_STRUCT_HAS(info, pfa_device_info, name)) {
    write_message(info->name, sizeof info->name, "%s", ctx.cpu_name.c_str());
  }
  if (!PFA_STRUCT_HAS(info, pfa_device_info, detail)) return PFA_STATUS_OK;
  write_message(info->detail, sizeof info->detail, "oneTBB %d threads, KissFFT, %s", ctx.threads,
                ctx.fnet ? "fnet" : "lowpass");
  return PFA_STATUS_OK;
}

const pfa_plugin_api kApi = {
    sizeof(pfa_plugin_api),
    PFA_ABI_VERSION_MAJOR,
    PFA_ABI_VERSION_MINOR,
    "spectral",
    "0.1.0",
    "Fourier attention on CPU: spectral low-pass attention (approximate) or FNet mixing "
    "(a replacement for attention)",
    PFA_PROP_APPROXIMATE | PFA_PROP_THREAD_SAFE,
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

}  // namespace pfa::spectral_plugin

PFA_PLUGIN_EXPORT pfa_status pfa_plugin_entry(const pfa_host_info* host, const pfa_plugin_api** api,
                                              char* message, size_t capacity) {
  return pfa::plugin::hand_out_table(host, api, pfa::spectral_plugin::kApi, message, capacity);
}

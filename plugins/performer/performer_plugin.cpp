// performer: FAVOR+ random-feature attention (research/performer) behind the pfa plugin ABI.
// Approximate by design: linear in the sequence length, with an error that depends on the input
// regime (softmax_scale * |q|^2) and the feature count. Every run measures its own error on a
// sample of rows against exact attention and reports it as run_result.error_estimate.
//
// Settings, read once at create():
//   PFA_PERFORMER_FEATURES    random features per head (default 256, 1..16384)
//   PFA_PERFORMER_SEED        seed of the feature draws (default 0x5eed2021)
//   PFA_PERFORMER_REGIME      input regime softmax_scale*|q|^2 the prior assumes (default 2.0);
//                             the prior uses the largest regime this context has seen if larger
//   PFA_PERFORMER_CHECK_ROWS  rows per call compared with exact attention (default 32, 0 = off)
#include "env_config.h"

#include <plugin_support.h>
#include <pfa/research/performer.h>
#include <pfa/research/sampled_error.h>

#include <tbb/info.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <memory>
#include <new>
#include <string>

namespace pfa::performer_plugin {

namespace {

using plugin::fail;
using plugin::write_message;

struct Context {
  research::PerformerConfig config;
  double assumed_regime = 2.0;
  int64_t check_rows = 32;
  std::atomic<double> regime_seen{0.0};  // largest measured regime so far
  int threads = 1;
  std::string cpu_name;
};

Context& ctx_of(pfa_context* c) { return *reinterpret_cast<Context*>(c); }

pfa_status create(const pfa_host_info*, pfa_context** context, char* message, size_t capacity) {
  if (context == nullptr) return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity, "no context");
  try {
    auto ctx = std::make_unique<Context>();
    std::string error;
    int64_t seed = static_cast<int64_t>(ctx->config.seed);
    if (!plugin::env_int("PFA_PERFORMER_FEATURES", 1, 16384, &ctx->config.features, &error) ||
        !plugin::env_int("PFA_PERFORMER_SEED", 0, INT64_MAX, &seed, &error) ||
        !plugin::env_double("PFA_PERFORMER_REGIME", 0.0, 100.0, &ctx->assumed_regime, &error) ||
        !plugin::env_int("PFA_PERFORMER_CHECK_ROWS", 0, 4096, &ctx->check_rows, &error)) {
      return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity, error.c_str());
    }
    ctx->config.seed = static_cast<uint64_t>(seed);
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
  const pfa_problem& p = *problem;
  if (p.device_type != kDLCPU) {
    write_message(reason, capacity, "performer runs on the CPU only (device type %d)",
                  p.device_type);
    return PFA_STATUS_UNSUPPORTED;
  }
  if (p.dtype != PFA_DTYPE_FP32 && p.dtype != PFA_DTYPE_FP16 && p.dtype != PFA_DTYPE_BF16) {
    write_message(reason, capacity, "unknown dtype %d", p.dtype);
    return PFA_STATUS_UNSUPPORTED;
  }
  if (p.head_dim > 1024) {
    write_message(reason, capacity, "head_dim %lld > 1024: the random projection would not fit",
                  static_cast<long long>(p.head_dim));
    return PFA_STATUS_UNSUPPORTED;
  }
  if (p.want_lse) {
    // The library computes one, but per row it is the log of a random-feature estimate of the
    // partition function: on rows with few keys or large |q| it is off by more than a nat.
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity,
                "performer does not return the log-sum-exp: the FAVOR+ normaliser is a noisy "
                "estimate and its log can be off by more than 1 on single rows");
  }
  if (!(p.softmax_scale >= 0)) {
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity,
                "FAVOR+ needs softmax_scale >= 0 (it scales q and k by its square root)");
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
  const double m = static_cast<double>(ctx.config.features), d = static_cast<double>(p.head_dim);
  const double b = static_cast<double>(p.batch);
  // Per key and per query: m*d for the feature exponents and m*d for the state or the readout.
  // Linear in L; the causal path is serial within a key/value head.
  const double flops = 4.0 * m * d * b *
                       (static_cast<double>(p.heads_kv * p.seqlen_k) +
                        static_cast<double>(p.heads_q * p.seqlen_q));
  const double exps = m * b * static_cast<double>(p.heads_kv * p.seqlen_k + p.heads_q * p.seqlen_q);
  const double parallel =
      p.causal ? std::min<double>(ctx.threads, b * static_cast<double>(p.heads_kv)) : ctx.threads;
  const double rows = std::min<double>(ctx.check_rows, b * p.heads_q * p.seqlen_q);
  const double check = 2.0 * rows * static_cast<double>(p.seqlen_k) * d / 1e9;
  const double latency = 30e-6 + (flops / 8e9 + exps / 0.4e9) / std::max(1.0, parallel) + check;
  const double regime = std::max(ctx.assumed_regime, ctx.regime_seen.load());
  estimate->latency_s = latency;
  if (PFA_STRUCT_HAS(estimate, pfa_estimate, energy_j)) estimate->energy_j = -1;
  if (PFA_STRUCT_HAS(estimate, pfa_estimate, rel_error)) {
    // One key: the estimate is exact (the same factor on top and bottom).
    estimate->rel_error = p.seqlen_k == 1 ? 0.0
                                          : research::performer_expected_error(
                                                regime, ctx.config.features, p.seqlen_k);
  }
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
  Context& ctx = ctx_of(context);
  // A refused problem is refused here too, before anything is written.
  char reason[256] = {0};
  if (supports(context, args->problem, reason, sizeof reason) != PFA_STATUS_OK) {
    return fail(PFA_STATUS_UNSUPPORTED, message, capacity, reason);
  }
  double measured = -1;
  try {
    const auto params = plugin::params_from_args(*args);
    research::performer_attention(params, ctx.config);
    if (ctx.check_rows > 0) {
      const auto report = research::sampled_error(params, ctx.check_rows);
      measured = report.rel_error;
      const double regime = std::max(report.regime_q, report.regime_k);
      double seen = ctx.regime_seen.load();
      while (regime > seen && !ctx.regime_seen.compare_exchange_weak(seen, regime)) {
      }
    }
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
      // Measured on this call's rows when checking is on, else the prior.
      pfa_estimate prior{};
      prior.struct_size = sizeof prior;
      estimate(context, args->problem, &prior, nullptr, 0);
      result->error_estimate = measured >= 0 ? measured : prior.rel_error;
    }
    if (PFA_STRUCT_HAS(result, pfa_run_result, measured_rel_error)) {
      result->measured_rel_error = measured;
    }
    if (PFA_STRUCT_HAS(result, pfa_run_result, detail)) {
      write_message(result->detail, sizeof result->detail, "favor+ m=%lld%s",
                    static_cast<long long>(ctx.config.features),
                    measured >= 0 ? " checked" : "");
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
    write_message(message, capacity, "performer serves the CPU only, not device type %d id %d",
                  device_type, device_id);
    return PFA_STATUS_UNSUPPORTED;
  }
  const Context& ctx = ctx_of(context);
  // An older host passes a shorter struct: write only the fields it has room for.
  if (PFA_STRUCT_HAS(info, pfa_device_info, name)) {
    write_message(info->name, sizeof info->name, "%s", ctx.cpu_name.c_str());
  }
  if (!PFA_STRUCT_HAS(info, pfa_device_info, detail)) return PFA_STATUS_OK;
  write_message(info->detail, sizeof info->detail, "oneTBB %d threads, FAVOR+ %lld features",
                ctx.threads, static_cast<long long>(ctx.config.features));
  return PFA_STATUS_OK;
}

const pfa_plugin_api kApi = {
    sizeof(pfa_plugin_api),
    PFA_ABI_VERSION_MAJOR,
    PFA_ABI_VERSION_MINOR,
    "performer",
    "0.1.0",
    "FAVOR+ positive orthogonal random-feature attention on CPU (approximate, linear in L)",
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

}  // namespace pfa::performer_plugin

PFA_PLUGIN_EXPORT pfa_status pfa_plugin_entry(const pfa_host_info* host, const pfa_plugin_api** api,
                                              char* message, size_t capacity) {
  return pfa::plugin::hand_out_table(host, api, pfa::performer_plugin::kApi, message, capacity);
}

// quantum: QSANN-style quantum self-attention (research/quantum) on an exact state-vector
// simulator, behind the pfa plugin ABI; CPU only, a research baseline. Not softmax attention and
// not converging to it: its prior error says so, and every run measures its distance from exact
// attention on a sample of rows (run_result.error_estimate). Cost grows as 2^qubits per gate.
//
// Settings:
//   PFA_QUANTUM_QUBITS      qubits per circuit (default 6, 1..12)
//   PFA_QUANTUM_DEPTH       parameterised layers after the encoding (default 2, 0..16)
//   PFA_QUANTUM_SHOTS       0 = exact expectations (default); else shots per expectation
//   PFA_QUANTUM_SEED        seed of the circuit parameters and shot noise (default 0x05a11ed)
//   PFA_QUANTUM_CHECK_ROWS  rows per call compared with exact attention (default 32, 0 = off)
#include "env_config.h"

#include <plugin_support.h>
#include <pfa/research/qsann.h>
#include <pfa/research/sampled_error.h>

#include <tbb/info.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <memory>
#include <new>
#include <string>

namespace pfa::quantum_plugin {

namespace {

using plugin::fail;
using plugin::write_message;

struct Context {
  research::QsannConfig config;
  int64_t check_rows = 32;
  int threads = 1;
  std::string cpu_name;
};

Context& ctx_of(pfa_context* c) { return *reinterpret_cast<Context*>(c); }

// Amplitude updates the simulation needs: gates per token times 2^n, over every query and key.
double simulation_work(const research::QsannConfig& c, const pfa_problem& p) {
  const double n = c.qubits;
  const double gates = (2.0 * std::ceil(static_cast<double>(p.head_dim) / n) + 3.0 * c.depth) * n;
  const double tokens = static_cast<double>(p.batch) *
                        static_cast<double>(p.heads_q * p.seqlen_q + p.heads_kv * p.seqlen_k);
  return tokens * gates * std::ldexp(1.0, c.qubits);
}

pfa_status create(const pfa_host_info*, pfa_context** context, char* message, size_t capacity) {
  if (context == nullptr) return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity, "no context");
  try {
    auto ctx = std::make_unique<Context>();
    std::string error;
    int64_t qubits = ctx->config.qubits, depth = ctx->config.depth;
    int64_t seed = static_cast<int64_t>(ctx->config.seed);
    if (!plugin::env_int("PFA_QUANTUM_QUBITS", 1, 12, &qubits, &error) ||
        !plugin::env_int("PFA_QUANTUM_DEPTH", 0, 16, &depth, &error) ||
        !plugin::env_int("PFA_QUANTUM_SHOTS", 0, int64_t{1} << 30, &ctx->config.shots, &error) ||
        !plugin::env_int("PFA_QUANTUM_SEED", 0, INT64_MAX, &seed, &error) ||
        !plugin::env_int("PFA_QUANTUM_CHECK_ROWS", 0, 4096, &ctx->check_rows, &error)) {
      return fail(PFA_STATUS_INVALID_ARGUMENT, message, capacity, error.c_str());
    }
    ctx->config.qubits = static_cast<int>(qubits);
    ctx->config.depth = static_cast<int>(depth);
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
  const Context& ctx = ctx_of(context);
  const pfa_problem& p = *problem;
  if (p.device_type != kDLCPU) {
    write_message(reason, capacity, "quantum runs on the CPU only (device type %d)",
                  p.device_type);
    return PFA_STATUS_UNSUPPORTED;
  }
  if (p.dtype != PFA_DTYPE_FP32 && p.dtype != PFA_DTYPE_FP16 && p.dtype != PFA_DTYPE_BF16) {
    write_message(reason, capacity, "unknown dtype %d", p.dtype);
    return PFA_STATUS_UNSUPPORTED;
  }
  if (p.want_lse) {
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity,
                "quantum does not return the log-sum-exp: its weights exp(-(z_q - z_k)^2) come "
                "from circuit expectations, not from q.k, so it would not be comparable");
  }
  if (!(p.softmax_scale >= 0)) {
    return fail(PFA_STATUS_UNSUPPORTED, reason, capacity,
                "quantum needs softmax_scale >= 0 (it scales the encoding angles by its root)");
  }
  // A state-vector simulation is a research baseline: refuse what would run for many minutes.
  const double work = simulation_work(ctx.config, p);
  const double pairs = static_cast<double>(p.batch * p.heads_q) *
                       static_cast<double>(p.seqlen_q) * static_cast<double>(p.seqlen_k);
  if (work > 2e11 || pairs * static_cast<double>(p.head_dim) > 1e12) {
    write_message(reason, capacity,
                  "quantum would simulate %.3g amplitude updates (%d qubits) and aggregate %.3g "
                  "query/key pairs: too large for a state-vector research baseline",
                  work, ctx.config.qubits, pairs);
    return PFA_STATUS_UNSUPPORTED;
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
  const double threads = std::max(1, ctx.threads);
  // About 1e9 complex amplitude updates per second per core; the aggregation is Lq Lk d
  // multiply-adds plus one exp per pair.
  const double pairs = static_cast<double>(p.batch * p.heads_q) *
                       static_cast<double>(p.seqlen_q) * static_cast<double>(p.seqlen_k);
  const double simulate = simulation_work(ctx.config, p) / 1e9;
  const double aggregate = (pairs * 2.0 * static_cast<double>(p.head_dim) / 4e9) + pairs / 2e8;
  const double rows = std::min<double>(ctx.check_rows, static_cast<double>(p.batch * p.heads_q *
                                                                           p.seqlen_q));
  const double check = 2.0 * rows * static_cast<double>(p.seqlen_k * p.head_dim) / 1e9;
  estimate->latency_s = 50e-6 + (simulate + aggregate) / threads + check;
  if (PFA_STRUCT_HAS(estimate, pfa_estimate, energy_j)) estimate->energy_j = -1;
  if (PFA_STRUCT_HAS(estimate, pfa_estimate, rel_error)) {
    // One key: every weighting returns that key's value.
    estimate->rel_error = p.seqlen_k == 1 ? 0.0 : research::qsann_expected_error();
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
  const Context& ctx = ctx_of(context);
  // A refused problem is refused here too, before anything is written.
  char reason[256] = {0};
  if (supports(context, args->problem, reason, sizeof reason) != PFA_STATUS_OK) {
    return fail(PFA_STATUS_UNSUPPORTED, message, capacity, reason);
  }
  double measured = -1;
  try {
    const auto params = plugin::params_from_args(*args);
    research::qsann_attention(params, ctx.config);
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
      result->error_estimate = measured >= 0 ? measured : research::qsann_expected_error();
    }
    if (PFA_STRUCT_HAS(result, pfa_run_result, measured_rel_error)) {
      result->measured_rel_error = measured;
    }
    if (PFA_STRUCT_HAS(result, pfa_run_result, detail)) {
      write_message(result->detail, sizeof result->detail, "qsann n=%d depth=%d shots=%lld",
                    ctx.config.qubits, ctx.config.depth,
                    static_cast<long long>(ctx.config.shots));
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
    write_message(message, capacity, "quantum serves the CPU only, not device type %d id %d",
                  device_type, device_id);
    return PFA_STATUS_UNSUPPORTED;
  }
  const Context& ctx = ctx_of(context);
  // An older host passes a shorter struct: write only the fields it has room for.
  if (PFA_STRUCT_HAS(info, pfa_device_info, name)) {
    write_message(info->name, sizeof info->name, "%s", ctx.cpu_name.c_str());
  }
  if (!PFA_STRUCT_HAS(info, pfa_device_info, detail)) return PFA_STATUS_OK;
  write_message(info->detail, sizeof info->detail,
                "oneTBB %d threads, state-vector simulator %d qubits", ctx.threads,
                ctx.config.qubits);
  return PFA_STATUS_OK;
}

const pfa_plugin_api kApi = {
    sizeof(pfa_plugin_api),
    PFA_ABI_VERSION_MAJOR,
    PFA_ABI_VERSION_MINOR,
    "quantum",
    "0.1.0",
    "QSANN-style quantum self-attention on a CPU state-vector simulator (research baseline; "
    "not softmax attention)",
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

}  // namespace pfa::quantum_plugin

PFA_PLUGIN_EXPORT pfa_status pfa_plugin_entry(const pfa_host_info* host, const pfa_plugin_api** api,
                                              char* message, size_t capacity) {
  return pfa::plugin::hand_out_table(host, api, pfa::quantum_plugin::kApi, message, capacity);
}

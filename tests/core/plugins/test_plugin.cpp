// A small exact attention plugin whose behaviour is set at compile time, so the loader and engine
// tests can exercise success, failure, fallback and every load diagnostic with real .so files.
//   PFA_TEST_NAME       plugin name
//   PFA_TEST_BEHAVIOUR  0 works, 1 run() always fails, 2 wrong ABI major, 3 create() fails,
//                       4 entry refuses, 5 refuses head_dim 13, 6 writes NaN, 7 run() throws,
//                       8 supports() throws
//   PFA_TEST_LATENCY    the estimate it gives (seconds per unit of work), to order candidates
#include <pfa/plugin_abi.h>

#include "float16.h"
#include "plugin_support.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace {

using pfa::plugin::write_message;

struct Context {
  int runs = 0;
};

using pfa::test::load_element;
using pfa::test::store_element;

pfa_status create(const pfa_host_info*, pfa_context** context, char* message, size_t capacity) {
  if (PFA_TEST_BEHAVIOUR == 3) {
    write_message(message, capacity, "test plugin refuses to initialise");
    return PFA_STATUS_INTERNAL;
  }
  *context = reinterpret_cast<pfa_context*>(new Context());
  return PFA_STATUS_OK;
}

void destroy(pfa_context* context) { delete reinterpret_cast<Context*>(context); }

pfa_status supports(pfa_context*, const pfa_problem* p, char* reason, size_t capacity) {
  if (PFA_TEST_BEHAVIOUR == 8) throw std::logic_error("supports() blew up");
  if (p->device_type != kDLCPU) {
    write_message(reason, capacity, "CPU tensors only");
    return PFA_STATUS_UNSUPPORTED;
  }
  if (PFA_TEST_BEHAVIOUR == 5 && p->head_dim == 13) {
    write_message(reason, capacity, "head_dim 13 is not served by this test plugin");
    return PFA_STATUS_UNSUPPORTED;
  }
  return PFA_STATUS_OK;
}

pfa_status estimate(pfa_context*, const pfa_problem* p, pfa_estimate* e, char*, size_t) {
  e->latency_s = PFA_TEST_LATENCY * static_cast<double>(p->batch * p->heads_q) *
                 static_cast<double>(p->seqlen_q * p->seqlen_k * p->head_dim);
  e->energy_j = -1;
  e->rel_error = 0;
  return PFA_STATUS_OK;
}

pfa_status run(pfa_context* context, const pfa_run_args* args, pfa_run_result* result,
               char* message, size_t capacity) {
  reinterpret_cast<Context*>(context)->runs++;
  if (PFA_TEST_BEHAVIOUR == 1) {
    write_message(message, capacity, "test plugin fails on purpose");
    return PFA_STATUS_INTERNAL;
  }
  if (PFA_TEST_BEHAVIOUR == 7) throw std::runtime_error("run() blew up");
  const auto a = pfa::plugin::params_from_args(*args);
  const int32_t dtype = args->problem->dtype;
  const int64_t group = a.heads_q / a.heads_kv;
  std::vector<double> scores(static_cast<size_t>(a.seqlen_k));
  for (int64_t b = 0; b < a.batch; ++b)
    for (int64_t h = 0; h < a.heads_q; ++h)
      for (int64_t i = 0; i < a.seqlen_q; ++i) {
        const int64_t hk = h / group;
        int64_t visible = a.seqlen_k;
        if (a.causal) visible = std::max<int64_t>(0, std::min(a.seqlen_k, i + a.seqlen_k - a.seqlen_q + 1));
        const int64_t qo = b * a.q_stride[0] + i * a.q_stride[1] + h * a.q_stride[2];
        const int64_t oo = b * a.o_stride[0] + i * a.o_stride[1] + h * a.o_stride[2];
        double m = -std::numeric_limits<double>::infinity(), sum = 0;
        for (int64_t j = 0; j < visible; ++j) {
          const int64_t ko = b * a.k_stride[0] + j * a.k_stride[1] + hk * a.k_stride[2];
          double dot = 0;
          for (int64_t d = 0; d < a.head_dim; ++d) dot += load_element(a.q, dtype, qo + d) * load_element(a.k, dtype, ko + d);
          scores[j] = dot * a.softmax_scale;
          m = std::max(m, scores[j]);
        }
        for (int64_t j = 0; j < visible; ++j) sum += (scores[j] = std::exp(scores[j] - m));
        for (int64_t d = 0; d < a.head_dim; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < visible; ++j) {
            const int64_t vo = b * a.v_stride[0] + j * a.v_stride[1] + hk * a.v_stride[2];
            acc += scores[j] * load_element(a.v, dtype, vo + d);
          }
          store_element(a.out, dtype, oo + d,
                PFA_TEST_BEHAVIOUR == 6 ? std::nan("") : visible ? acc / sum : 0.0);
        }
        if (a.lse) a.lse[(b * a.heads_q + h) * a.seqlen_q + i] = static_cast<float>(visible ? m + std::log(sum) : -INFINITY);
      }
  if (result) write_message(result->detail, sizeof result->detail, "scalar");
  return PFA_STATUS_OK;
}

pfa_status device_info(pfa_context*, int32_t, int32_t, pfa_device_info* info, char*, size_t) {
  write_message(info->name, sizeof info->name, "test cpu");
  write_message(info->detail, sizeof info->detail, "scalar");
  return PFA_STATUS_OK;
}

const pfa_plugin_api kApi = {
    sizeof(pfa_plugin_api),
    PFA_TEST_BEHAVIOUR == 2 ? PFA_ABI_VERSION_MAJOR + 1 : PFA_ABI_VERSION_MAJOR,
    PFA_ABI_VERSION_MINOR,
    PFA_TEST_NAME,
    "0.0.1",
    "exact scalar attention for engine tests",
    0,
    1u << kDLCPU,
    create,
    destroy,
    supports,
    estimate,
    run,
    device_info,
    nullptr};

}  // namespace

PFA_PLUGIN_EXPORT pfa_status pfa_plugin_entry(const pfa_host_info*, const pfa_plugin_api** api,
                                              char* message, size_t capacity) {
  if (PFA_TEST_BEHAVIOUR == 4) {
    write_message(message, capacity, "test plugin entry refuses this host");
    return PFA_STATUS_ABI_MISMATCH;
  }
  *api = &kApi;
  return PFA_STATUS_OK;
}

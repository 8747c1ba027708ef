// Small exact fp32 attention plugins, each breaking (or stretching) one rule of the plugin ABI, so
// that `pfa-tune conformance` is shown to catch what it claims to:
//   ABI_VARIANT 0  old_table            an older plugin: its table ends before `extensions` (passes)
//               1  newer_major          its table says ABI major + 1 (the host refuses to load it)
//               2  ignores_host         accepts a host of any major version
//               3  silent_refusal       refuses head_dim > 64 without a reason
//               4  wrong_output         ignores the softmax scale
//               5  writes_when_refused  run() zeroes the output before finding it can't serve
#include <pfa/plugin_abi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

namespace {

void say(char* message, size_t capacity, const char* text) {
  if (message && capacity) std::snprintf(message, capacity, "%s", text);
}

pfa_status create(const pfa_host_info*, pfa_context** context, char*, size_t) {
  static int dummy;
  *context = reinterpret_cast<pfa_context*>(&dummy);
  return PFA_STATUS_OK;
}

void destroy(pfa_context*) {}

pfa_status supports(pfa_context*, const pfa_problem* p, char* reason, size_t capacity) {
  if (p->device_type != kDLCPU) return say(reason, capacity, "CPU only"), PFA_STATUS_UNSUPPORTED;
  if (p->dtype != PFA_DTYPE_FP32) return say(reason, capacity, "fp32 only"), PFA_STATUS_UNSUPPORTED;
  if (p->head_dim > 64) {
    say(reason, capacity, ABI_VARIANT == 3 ? "" : "head_dim over 64");
    return PFA_STATUS_UNSUPPORTED;
  }
  return PFA_STATUS_OK;
}

pfa_status estimate(pfa_context*, const pfa_problem* p, pfa_estimate* e, char*, size_t) {
  if (PFA_STRUCT_HAS(e, pfa_estimate, latency_s)) {
    e->latency_s = 1e-9 * double(p->batch * p->heads_q) * double(p->seqlen_q * p->seqlen_k * p->head_dim);
  }
  if (PFA_STRUCT_HAS(e, pfa_estimate, energy_j)) e->energy_j = -1;
  if (PFA_STRUCT_HAS(e, pfa_estimate, rel_error)) e->rel_error = 0;
  return PFA_STATUS_OK;
}

pfa_status run(pfa_context* context, const pfa_run_args* a, pfa_run_result* result, char* message,
               size_t capacity) {
  const pfa_problem& p = *a->problem;
  float* out = reinterpret_cast<float*>(static_cast<char*>(a->out->data) + a->out->byte_offset);
  if (ABI_VARIANT == 5 && p.dtype == PFA_DTYPE_FP32) {
    for (int64_t i = 0; i < p.batch * p.seqlen_q * p.heads_q * p.head_dim; ++i) out[i] = 0;
  }
  if (supports(context, &p, message, capacity) != PFA_STATUS_OK) {
    if (message && !message[0]) say(message, capacity, "not served");
    return PFA_STATUS_UNSUPPORTED;
  }
  auto at = [](const DLTensor* t, int64_t b, int64_t s, int64_t h) {
    return reinterpret_cast<const float*>(static_cast<const char*>(t->data) + t->byte_offset) +
           b * t->strides[0] + s * t->strides[1] + h * t->strides[2];
  };
  const double scale = ABI_VARIANT == 4 ? 1.0 : p.softmax_scale;
  std::vector<double> w(static_cast<size_t>(p.seqlen_k));
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t h = 0; h < p.heads_q; ++h)
      for (int64_t i = 0; i < p.seqlen_q; ++i) {
        const int64_t hk = h / (p.heads_q / p.heads_kv);
        const int64_t visible = p.causal ? std::clamp<int64_t>(i + p.seqlen_k - p.seqlen_q + 1, 0, p.seqlen_k) : p.seqlen_k;
        double m = -std::numeric_limits<double>::infinity(), sum = 0;
        for (int64_t j = 0; j < visible; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < p.head_dim; ++d) dot += double(at(a->q, b, i, h)[d]) * at(a->k, b, j, hk)[d];
          m = std::max(m, w[j] = dot * scale);
        }
        for (int64_t j = 0; j < visible; ++j) sum += (w[j] = std::exp(w[j] - m));
        float* o = const_cast<float*>(at(a->out, b, i, h));
        for (int64_t d = 0; d < p.head_dim; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < visible; ++j) acc += w[j] * at(a->v, b, j, hk)[d];
          o[d] = visible ? float(acc / sum) : 0.0f;
        }
        if (a->lse) {
          float* lse = reinterpret_cast<float*>(static_cast<char*>(a->lse->data) + a->lse->byte_offset);
          lse[(b * p.heads_q + h) * p.seqlen_q + i] = visible ? float(m + std::log(sum)) : -INFINITY;
        }
      }
  if (result && PFA_STRUCT_HAS(result, pfa_run_result, detail)) say(result->detail, sizeof result->detail, "abi test");
  return PFA_STATUS_OK;
}

pfa_status device_info(pfa_context*, int32_t, int32_t, pfa_device_info* info, char*, size_t) {
  if (PFA_STRUCT_HAS(info, pfa_device_info, name)) say(info->name, sizeof info->name, "test cpu");
  if (PFA_STRUCT_HAS(info, pfa_device_info, detail)) say(info->detail, sizeof info->detail, "abi test");
  return PFA_STATUS_OK;
}

const pfa_plugin_api kApi = {
    ABI_VARIANT == 0 ? offsetof(pfa_plugin_api, extensions) : sizeof(pfa_plugin_api),
    ABI_VARIANT == 1 ? PFA_ABI_VERSION_MAJOR + 1 : PFA_ABI_VERSION_MAJOR,
    0,
    ABI_NAME,
    "0.0.1",
    "ABI conformance test plugin",
    PFA_PROP_THREAD_SAFE,
    1u << kDLCPU,
    create,
    destroy,
    supports,
    estimate,
    run,
    device_info,
    nullptr};

}  // namespace

PFA_PLUGIN_EXPORT pfa_status pfa_plugin_entry(const pfa_host_info* host, const pfa_plugin_api** api,
                                              char* message, size_t capacity) {
  const bool check_major = ABI_VARIANT != 1 && ABI_VARIANT != 2;
  if (check_major && host->abi_major != PFA_ABI_VERSION_MAJOR) {
    say(message, capacity, "abi test plugin: another ABI major");
    return PFA_STATUS_ABI_MISMATCH;
  }
  *api = &kApi;
  return PFA_STATUS_OK;
}

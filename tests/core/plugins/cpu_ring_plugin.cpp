// A test plugin that serves problems split over several ranks on the CPU: the ring of
// pfa/sequence_sharding.h (same plan, same log-sum-exp merge as cuda_ring) with the ranks as threads
// of one process and a CpuRingGroup as the communicator. It lets the engine's handling of split
// problems (eligibility, the communicator's way to the plugin, no fallback) and the ring's
// arithmetic be checked against full attention on any machine.
#include <pfa/plugin_abi.h>
#include <pfa/sequence_sharding.h>

#include "cpu_ring_group.h"
#include "float16.h"
#include "plugin_support.h"

#include <cmath>
#include <limits>
#include <vector>

namespace {

using pfa::plugin::write_message;
using pfa::test::load_element;
using pfa::test::store_element;

pfa_status create(const pfa_host_info*, pfa_context** context, char*, size_t) {
  *context = nullptr;
  return PFA_STATUS_OK;
}

void destroy(pfa_context*) {}


pfa_status supports(pfa_context*, const pfa_problem* p, char* reason, size_t capacity) {
  if (p->device_type != kDLCPU) {
    write_message(reason, capacity, "CPU tensors only");
    return PFA_STATUS_UNSUPPORTED;
  }
  if (pfa::plugin::problem_ranks(*p) < 2) {
    write_message(reason, capacity, "serves split problems only");
    return PFA_STATUS_UNSUPPORTED;
  }
  return PFA_STATUS_OK;
}

pfa_status estimate(pfa_context*, const pfa_problem* p, pfa_estimate* e, char*, size_t) {
  e->latency_s = 1e-9 * static_cast<double>(p->batch * p->heads_q * p->seqlen_q * p->seqlen_k);
  e->energy_j = -1;
  e->rel_error = 0;
  return PFA_STATUS_OK;
}

pfa_status run(pfa_context*, const pfa_run_args* args, pfa_run_result* result, char* message,
               size_t capacity) {
  if (!PFA_STRUCT_HAS(args, pfa_run_args, communicator) || args->communicator == nullptr) {
    write_message(message, capacity, "no communicator for a split problem");
    return PFA_STATUS_INVALID_ARGUMENT;
  }
  const auto& member = *static_cast<const pfa::test::CpuRingMember*>(args->communicator);
  auto& group = *member.group;
  const int ranks = pfa::plugin::problem_ranks(*args->problem);
  if (group.ranks != ranks) {
    write_message(message, capacity, "the communicator's size differs from the problem's ranks");
    return PFA_STATUS_INVALID_ARGUMENT;
  }
  const auto a = pfa::plugin::params_from_args(*args);
  const int32_t dtype = args->problem->dtype;
  const int64_t D = a.head_dim, group_size = a.heads_q / a.heads_kv;
  const size_t rows = static_cast<size_t>(a.batch * a.heads_q * a.seqlen_q);
  std::vector<double> acc(rows * static_cast<size_t>(D), 0.0);
  std::vector<double> acc_lse(rows, -std::numeric_limits<double>::infinity());
  std::vector<double> part(static_cast<size_t>(D)), scores(static_cast<size_t>(a.seqlen_k));

  group.k[static_cast<size_t>(member.rank)] = a.k;
  group.v[static_cast<size_t>(member.rank)] = a.v;
  group.sync.arrive_and_wait();  // every shard is published
  for (int step = 0; step < ranks; ++step) {
    const auto s = pfa::sharding::ring_step(ranks, member.rank, step, a.seqlen_q, a.seqlen_k,
                                            a.causal);
    const void* k = group.k[static_cast<size_t>(s.source)];
    const void* v = group.v[static_cast<size_t>(s.source)];
    for (int64_t b = 0; b < a.batch; ++b)
      for (int64_t h = 0; h < a.heads_q; ++h)
        for (int64_t i = s.q_begin; i < s.q_begin + s.q_rows; ++i) {
          const int64_t hk = h / group_size, row = i - s.q_begin;
          const int64_t visible = s.causal ? std::min(s.kv_rows, row + 1) : s.kv_rows;
          double m = -std::numeric_limits<double>::infinity(), sum = 0;
          for (int64_t j = 0; j < visible; ++j) {
            const int64_t ko = b * a.k_stride[0] + (s.kv_begin + j) * a.k_stride[1] + hk * a.k_stride[2];
            const int64_t qo = b * a.q_stride[0] + i * a.q_stride[1] + h * a.q_stride[2];
            double dot = 0;
            for (int64_t d = 0; d < D; ++d) dot += load_element(a.q, dtype, qo + d) * load_element(k, dtype, ko + d);
            scores[static_cast<size_t>(j)] = dot * a.softmax_scale;
            m = std::max(m, scores[static_cast<size_t>(j)]);
          }
          for (int64_t j = 0; j < visible; ++j) sum += (scores[static_cast<size_t>(j)] = std::exp(scores[static_cast<size_t>(j)] - m));
          for (int64_t d = 0; d < D; ++d) {
            double o = 0;
            for (int64_t j = 0; j < visible; ++j) {
              const int64_t vo = b * a.v_stride[0] + (s.kv_begin + j) * a.v_stride[1] + hk * a.v_stride[2];
              o += scores[static_cast<size_t>(j)] * load_element(v, dtype, vo + d);
            }
            part[static_cast<size_t>(d)] = visible ? o / sum : 0.0;
          }
          const size_t r = static_cast<size_t>((b * a.heads_q + h) * a.seqlen_q + i);
          pfa::sharding::merge_row(acc.data() + r * static_cast<size_t>(D), acc_lse[r], part.data(),
                                   visible ? m + std::log(sum) : -std::numeric_limits<double>::infinity(), D);
        }
  }
  group.sync.arrive_and_wait();  // nobody's shard is read any more

  for (int64_t b = 0; b < a.batch; ++b)
    for (int64_t h = 0; h < a.heads_q; ++h)
      for (int64_t i = 0; i < a.seqlen_q; ++i) {
        const size_t r = static_cast<size_t>((b * a.heads_q + h) * a.seqlen_q + i);
        const int64_t oo = b * a.o_stride[0] + i * a.o_stride[1] + h * a.o_stride[2];
        for (int64_t d = 0; d < D; ++d) store_element(a.out, dtype, oo + d, acc[r * static_cast<size_t>(D) + static_cast<size_t>(d)]);
        if (a.lse) a.lse[r] = static_cast<float>(acc_lse[r]);
      }
  if (result) write_message(result->detail, sizeof result->detail, "cpu ring");
  return PFA_STATUS_OK;
}

pfa_status device_info(pfa_context*, int32_t, int32_t, pfa_device_info* info, char*, size_t) {
  write_message(info->name, sizeof info->name, "test cpu");
  write_message(info->detail, sizeof info->detail, "threads as ranks");
  return PFA_STATUS_OK;
}

const pfa_plugin_api kApi = {sizeof(pfa_plugin_api),
                             PFA_ABI_VERSION_MAJOR,
                             PFA_ABI_VERSION_MINOR,
                             "cpu_ring",
                             "0.0.1",
                             "ring attention over threads, for engine tests",
                             PFA_PROP_THREAD_SAFE | PFA_PROP_DISTRIBUTED,
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
                                              char*, size_t) {
  *api = &kApi;
  return PFA_STATUS_OK;
}

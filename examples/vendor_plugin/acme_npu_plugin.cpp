// pfa backend plugin for the ACME NPU-1 — the template a hardware vendor copies.
//
// The NPU-1 is fictional: this plugin computes plain, exact attention on the host CPU so that it
// runs anywhere. Replace the body of compute() with calls into your device runtime; everything
// around it (the entry symbol, the function table, the struct_size rules, the messages) is what
// pfa expects from every backend, and `pfa-tune conformance` checks it.
//
// The only pfa file this includes is <pfa/plugin_abi.h> (plain C, plus DLPack). The plugin links
// nothing of pfa: the host hands it a table of what it needs at run time.
#include <pfa/plugin_abi.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

namespace {

// ---------------------------------------------------------------------------------------------
// Who this backend is. The name is how users pick it (`--backends acme_npu`) and how the
// execution store records it: keep it short, unique and stable across versions.
// ---------------------------------------------------------------------------------------------
constexpr const char* kName = "acme_npu";
constexpr const char* kVersion = "1.0.0";
constexpr const char* kDescription = "ACME NPU-1 attention (example vendor plugin; computes on the CPU)";

// The device's limits, as supports() and estimate() see them. Fictional numbers: put your own.
constexpr int64_t kMaxHeadDim = 256;       // the vector unit holds 256 elements per row
constexpr double kPeakFlops = 2.0e9;       // sustained FLOP/s of this reference implementation
constexpr double kBandwidth = 8.0e9;       // bytes/s between host memory and the "device"
constexpr double kPowerW = 15.0;           // board power, for the energy prior

// printf into the host's message buffer: always NUL-terminated, never past `capacity`. Every
// function that returns something other than PFA_STATUS_OK writes a reason here first.
__attribute__((format(printf, 3, 4))) void write_message(char* message, size_t capacity,
                                                         const char* format, ...) {
  if (message == nullptr || capacity == 0) return;
  va_list args;
  va_start(args, format);
  std::vsnprintf(message, capacity, format, args);
  va_end(args);
}

// ---------------------------------------------------------------------------------------------
// The context: the plugin's own state, created by create() and handed back on every call. The
// host never looks inside. Here it is read-only after create(), which is what lets the table
// declare PFA_PROP_THREAD_SAFE below: run() may then be called from several threads at once.
// A backend with mutable per-context state (a command queue, a workspace) either locks inside
// run() or leaves the flag off, and the host serialises its calls.
// ---------------------------------------------------------------------------------------------
struct AcmeContext {
  char host_version[32] = "unknown";
};

// Reads/writes one element of the three dtypes pfa passes. fp16 and bf16 are IEEE half and
// bfloat16 bit patterns; values are widened to float for the arithmetic.
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const int exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ffu;
  float value;
  if (exponent == 0) {
    value = std::ldexp(static_cast<float>(mantissa), -24);  // zero or subnormal
  } else if (exponent == 31) {
    value = mantissa ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    value = std::ldexp(static_cast<float>(mantissa | 0x400u), exponent - 25);
  }
  return sign ? -value : value;
}

uint16_t float_to_half(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const float magnitude = std::fabs(f);
  if (std::isnan(f)) return sign | 0x7e00u;
  if (magnitude >= 65520.0f) return sign | 0x7c00u;  // rounds to infinity
  if (magnitude < 6.103515625e-05f) {                 // subnormal half: multiples of 2^-24
    return sign | static_cast<uint16_t>(std::nearbyint(magnitude * 16777216.0f));
  }
  // Normal: round the float mantissa to 10 bits, nearest even (carries into the exponent).
  const uint32_t abs_bits = bits & 0x7fffffffu;
  const uint32_t rounded = abs_bits + 0xfffu + ((abs_bits >> 13) & 1u);
  return sign | static_cast<uint16_t>((rounded - 0x38000000u) >> 13);
}

float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if (std::isnan(f)) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

float load(const char* base, int32_t dtype, int64_t element) {
  if (dtype == PFA_DTYPE_FP32) {
    float f;
    std::memcpy(&f, base + element * 4, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, base + element * 2, 2);
  return dtype == PFA_DTYPE_FP16 ? half_to_float(h) : bf16_to_float(h);
}

void store(char* base, int32_t dtype, int64_t element, float value) {
  if (dtype == PFA_DTYPE_FP32) {
    std::memcpy(base + element * 4, &value, 4);
    return;
  }
  const uint16_t h = dtype == PFA_DTYPE_FP16 ? float_to_half(value) : float_to_bf16(value);
  std::memcpy(base + element * 2, &h, 2);
}

// The first byte of a tensor's data. DLPack allows a byte offset on top of the pointer.
const char* bytes(const DLTensor* t) { return static_cast<const char*>(t->data) + t->byte_offset; }
char* bytes(DLTensor* t) { return static_cast<char*>(t->data) + t->byte_offset; }

// ---------------------------------------------------------------------------------------------
// create / destroy: one context per loaded plugin. Read the host's fields only where its
// struct_size says it wrote them: an older host passes a shorter pfa_host_info.
// ---------------------------------------------------------------------------------------------
pfa_status create(const pfa_host_info* host, pfa_context** context, char* message,
                  size_t capacity) {
  if (context == nullptr) {
    write_message(message, capacity, "acme_npu: create() needs a place for the context");
    return PFA_STATUS_INVALID_ARGUMENT;
  }
  auto* state = new (std::nothrow) AcmeContext();
  if (state == nullptr) {
    write_message(message, capacity, "acme_npu: out of memory creating the context");
    return PFA_STATUS_OUT_OF_MEMORY;
  }
  if (host != nullptr && PFA_STRUCT_HAS(host, pfa_host_info, host_version) &&
      host->host_version != nullptr) {
    std::snprintf(state->host_version, sizeof state->host_version, "%s", host->host_version);
  }
  // A real backend opens its device here and fails with PFA_STATUS_DEVICE_ERROR and the driver's
  // words when there is none; the host then lists the plugin as "not loaded" with that message.
  *context = reinterpret_cast<pfa_context*>(state);
  return PFA_STATUS_OK;
}

void destroy(pfa_context* context) { delete reinterpret_cast<AcmeContext*>(context); }

// ---------------------------------------------------------------------------------------------
// supports(): asked for every problem before the router considers this backend. Answer from the
// problem alone (cheap, no device work) and give a reason for every "no": `pfa-tune route` shows
// it to the user, and the conformance check fails a refusal without one.
// ---------------------------------------------------------------------------------------------
pfa_status supports(pfa_context*, const pfa_problem* p, char* reason, size_t capacity) {
  // The problem's last ABI 1.0 field is device_id: a shorter struct is not a problem we understand.
  if (p == nullptr || !PFA_STRUCT_HAS(p, pfa_problem, device_id)) {
    write_message(reason, capacity, "acme_npu: problem struct missing or too short");
    return PFA_STATUS_INVALID_ARGUMENT;
  }
  if (p->device_type != kDLCPU) {
    write_message(reason, capacity, "acme_npu serves host (CPU) tensors only, not device type %d",
                  p->device_type);
    return PFA_STATUS_UNSUPPORTED;
  }
  if (p->dtype != PFA_DTYPE_FP32 && p->dtype != PFA_DTYPE_FP16 && p->dtype != PFA_DTYPE_BF16) {
    write_message(reason, capacity, "acme_npu: unknown dtype %d (fp32, fp16, bf16 only)", p->dtype);
    return PFA_STATUS_UNSUPPORTED;
  }
  if (p->head_dim < 1 || p->head_dim > kMaxHeadDim) {
    write_message(reason, capacity, "acme_npu: head_dim %lld outside 1..%lld (vector unit width)",
                  static_cast<long long>(p->head_dim), static_cast<long long>(kMaxHeadDim));
    return PFA_STATUS_UNSUPPORTED;
  }
  if (p->batch < 1 || p->heads_q < 1 || p->heads_kv < 1 || p->seqlen_q < 1 || p->seqlen_k < 1 ||
      p->heads_q % p->heads_kv != 0) {
    write_message(reason, capacity, "acme_npu: sizes must be positive and heads_q a multiple of heads_kv");
    return PFA_STATUS_UNSUPPORTED;
  }
  return PFA_STATUS_OK;
}

// ---------------------------------------------------------------------------------------------
// estimate(): the router's prior before any measurement exists (a roofline here). Must be cheap
// and must not touch the device. Write only the fields the host's struct_size covers.
// ---------------------------------------------------------------------------------------------
pfa_status estimate(pfa_context* context, const pfa_problem* p, pfa_estimate* e, char* message,
                    size_t capacity) {
  if (e == nullptr) {
    write_message(message, capacity, "acme_npu: estimate() needs a result struct");
    return PFA_STATUS_INVALID_ARGUMENT;
  }
  if (const pfa_status s = supports(context, p, message, capacity); s != PFA_STATUS_OK) return s;
  const double element = p->dtype == PFA_DTYPE_FP32 ? 4.0 : 2.0;
  const double pairs = static_cast<double>(p->seqlen_q) * static_cast<double>(p->seqlen_k) *
                       (p->causal ? 0.5 : 1.0);
  const double flops = 4.0 * p->batch * p->heads_q * pairs * p->head_dim;
  const double bytes_moved = element * p->batch * p->head_dim *
                             (2.0 * p->heads_q * p->seqlen_q + 2.0 * p->heads_kv * p->seqlen_k);
  const double seconds = flops / kPeakFlops + bytes_moved / kBandwidth;
  if (PFA_STRUCT_HAS(e, pfa_estimate, latency_s)) e->latency_s = seconds;
  if (PFA_STRUCT_HAS(e, pfa_estimate, energy_j)) e->energy_j = seconds * kPowerW;
  if (PFA_STRUCT_HAS(e, pfa_estimate, rel_error)) e->rel_error = 0.0;  // exact attention
  return PFA_STATUS_OK;
}

// The computation. Tensors arrive as [batch, seq, heads, head_dim] views with element strides;
// head_dim is contiguous. heads share key/value heads in groups (GQA); causal is bottom-right.
void compute(const pfa_problem& p, const pfa_run_args& a) {
  const int32_t dtype = p.dtype;
  const int64_t group = p.heads_q / p.heads_kv;
  const int64_t* qs = a.q->strides;
  const int64_t* ks = a.k->strides;
  const int64_t* vs = a.v->strides;
  const int64_t* os = a.out->strides;
  float* lse = a.lse ? reinterpret_cast<float*>(bytes(a.lse)) : nullptr;
  std::vector<double> scores(static_cast<size_t>(p.seqlen_k));
  std::vector<double> acc(static_cast<size_t>(p.head_dim));
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t h = 0; h < p.heads_q; ++h) {
      const int64_t hk = h / group;
      for (int64_t i = 0; i < p.seqlen_q; ++i) {
        // Keys this query may see: all, or up to i + (Lk - Lq) when causal (bottom-right).
        int64_t visible = p.seqlen_k;
        if (p.causal) visible = std::min(p.seqlen_k, std::max<int64_t>(0, i + p.seqlen_k - p.seqlen_q + 1));
        const int64_t q0 = b * qs[0] + i * qs[1] + h * qs[2];
        double max_score = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < visible; ++j) {
          const int64_t k0 = b * ks[0] + j * ks[1] + hk * ks[2];
          double dot = 0;
          for (int64_t d = 0; d < p.head_dim; ++d) {
            dot += static_cast<double>(load(bytes(a.q), dtype, q0 + d)) * load(bytes(a.k), dtype, k0 + d);
          }
          scores[j] = dot * p.softmax_scale;
          max_score = std::max(max_score, scores[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < visible; ++j) sum += (scores[j] = std::exp(scores[j] - max_score));
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j < visible; ++j) {
          const int64_t v0 = b * vs[0] + j * vs[1] + hk * vs[2];
          for (int64_t d = 0; d < p.head_dim; ++d) acc[d] += scores[j] * load(bytes(a.v), dtype, v0 + d);
        }
        // A row that sees no key gets zeros and an LSE of -inf (the ABI's rule).
        const int64_t o0 = b * os[0] + i * os[1] + h * os[2];
        for (int64_t d = 0; d < p.head_dim; ++d) {
          store(bytes(a.out), dtype, o0 + d, visible ? static_cast<float>(acc[d] / sum) : 0.0f);
        }
        if (lse) {
          lse[(b * p.heads_q + h) * p.seqlen_q + i] =
              visible ? static_cast<float>(max_score + std::log(sum)) : -INFINITY;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// run(): computes into args->out (and args->lse). Check before writing anything: a refused call
// must leave the output untouched. On a GPU-like device, enqueue on args->stream and return
// without synchronising it; never abort the process, never let a C++ exception cross the ABI.
// ---------------------------------------------------------------------------------------------
pfa_status run(pfa_context* context, const pfa_run_args* args, pfa_run_result* result,
               char* message, size_t capacity) {
  if (args == nullptr || !PFA_STRUCT_HAS(args, pfa_run_args, lse) || args->problem == nullptr ||
      args->q == nullptr || args->k == nullptr || args->v == nullptr || args->out == nullptr) {
    write_message(message, capacity, "acme_npu: run() needs a problem and q, k, v, out");
    return PFA_STATUS_INVALID_ARGUMENT;
  }
  const pfa_problem& p = *args->problem;
  if (const pfa_status s = supports(context, &p, message, capacity); s != PFA_STATUS_OK) return s;
  if (p.want_lse && args->lse == nullptr) {
    write_message(message, capacity, "acme_npu: the problem asks for the LSE but no lse tensor came");
    return PFA_STATUS_INVALID_ARGUMENT;
  }
  try {
    compute(p, *args);
  } catch (const std::bad_alloc&) {
    write_message(message, capacity, "acme_npu: out of host memory for %lld scores",
                  static_cast<long long>(p.seqlen_k));
    return PFA_STATUS_OUT_OF_MEMORY;
  }
  // `result` may be NULL; an older host passes a shorter struct: write only what fits.
  if (result != nullptr) {
    if (PFA_STRUCT_HAS(result, pfa_run_result, modelled_latency_s)) result->modelled_latency_s = 0.0;
    if (PFA_STRUCT_HAS(result, pfa_run_result, energy_j)) result->energy_j = -1.0;  // not measured
    if (PFA_STRUCT_HAS(result, pfa_run_result, energy_measured)) result->energy_measured = 0;
    if (PFA_STRUCT_HAS(result, pfa_run_result, error_estimate)) result->error_estimate = 0.0;
    if (PFA_STRUCT_HAS(result, pfa_run_result, detail)) {
      write_message(result->detail, sizeof result->detail, "reference");
    }
  }
  return PFA_STATUS_OK;
}

// ---------------------------------------------------------------------------------------------
// device_info(): names the device for the execution store's fingerprint, so that records from
// different chips (or driver versions) are not mixed when the router learns.
// ---------------------------------------------------------------------------------------------
pfa_status device_info(pfa_context* context, int32_t device_type, int32_t device_id,
                       pfa_device_info* info, char* message, size_t capacity) {
  if (info == nullptr || device_type != kDLCPU) {
    write_message(message, capacity, "acme_npu: no device of type %d", device_type);
    return PFA_STATUS_INVALID_ARGUMENT;
  }
  const auto* state = reinterpret_cast<const AcmeContext*>(context);
  if (PFA_STRUCT_HAS(info, pfa_device_info, name)) {
    write_message(info->name, sizeof info->name, "ACME NPU-1 #%d (emulated on the host CPU)", device_id);
  }
  if (PFA_STRUCT_HAS(info, pfa_device_info, detail)) {
    write_message(info->detail, sizeof info->detail, "firmware 1.0, reference kernels, host pfa %s",
                  state ? state->host_version : "unknown");
  }
  return PFA_STATUS_OK;
}

// ---------------------------------------------------------------------------------------------
// The function table. It lives as long as the library is loaded (a static), and its struct_size
// is sizeof the struct this plugin was compiled with: a newer host that appended fields reads
// only those that fit, so this plugin keeps working without a rebuild.
// ---------------------------------------------------------------------------------------------
const pfa_plugin_api kApi = {
    .struct_size = sizeof(pfa_plugin_api),
    .abi_major = PFA_ABI_VERSION_MAJOR,
    .abi_minor = PFA_ABI_VERSION_MINOR,
    .name = kName,
    .version = kVersion,
    .description = kDescription,
    .properties = PFA_PROP_THREAD_SAFE,   // exact, measured, and run() is reentrant (see AcmeContext)
    .device_types = 1u << kDLCPU,          // one bit per DLDeviceType served
    .create = create,
    .destroy = destroy,
    .supports = supports,
    .estimate = estimate,
    .run = run,
    .device_info = device_info,
    .extensions = nullptr,
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// The one exported symbol. The host passes its ABI version; refuse another major version with a
// message (the host shows it as the reason the plugin did not load), accept any minor version.
// ---------------------------------------------------------------------------------------------
PFA_PLUGIN_EXPORT pfa_status pfa_plugin_entry(const pfa_host_info* host, const pfa_plugin_api** api,
                                              char* message, size_t capacity) {
  if (host == nullptr || api == nullptr) {
    write_message(message, capacity, "acme_npu: pfa_plugin_entry needs host info and a table pointer");
    return PFA_STATUS_INVALID_ARGUMENT;
  }
  if (!PFA_STRUCT_HAS(host, pfa_host_info, abi_major) || host->abi_major != PFA_ABI_VERSION_MAJOR) {
    write_message(message, capacity, "acme_npu speaks plugin ABI %u.x; the host speaks %u.x",
                  PFA_ABI_VERSION_MAJOR,
                  PFA_STRUCT_HAS(host, pfa_host_info, abi_major) ? host->abi_major : 0u);
    return PFA_STATUS_ABI_MISMATCH;
  }
  *api = &kApi;
  return PFA_STATUS_OK;
}

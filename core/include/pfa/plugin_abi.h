/*
 * pfa plugin ABI — the one file a backend author reads.
 *
 * A backend is a shared library that exports one C symbol, `pfa_plugin_entry`. The host calls it
 * with its own ABI version and gets back a table of function pointers. Everything that crosses
 * this boundary is plain C: no C++ types, no LibTorch types. Tensors cross as DLPack `DLTensor`.
 *
 * Compatibility rules
 *  - Every struct begins with `struct_size`. A side reads only the fields that fit inside the size
 *    the other side wrote, so fields may be added at the end of a struct without breaking older
 *    plugins or hosts (the PJRT C API works the same way).
 *  - The major version changes only when an existing field or function changes meaning; the host
 *    rejects a plugin whose major version differs from its own. The minor version grows when fields
 *    or functions are appended.
 *  - A plugin never aborts the process for a bad problem: it returns a status and a message.
 *
 * Conventions for tensors passed to run()
 *  - The host normalises every layout to the logical order [batch, seq, heads, head_dim]:
 *      q   [batch, seqlen_q, heads_q,  head_dim]
 *      k,v [batch, seqlen_k, heads_kv, head_dim]
 *      out [batch, seqlen_q, heads_q,  head_dim]   (same dtype and device as q)
 *      lse [batch, heads_q, seqlen_q] float32, contiguous, natural log; or NULL when not asked for
 *    `strides` are always set (never NULL), counted in elements; the head_dim stride is always 1.
 *    A BHSD tensor therefore arrives as a BSHD view with permuted strides.
 *  - heads_q is a multiple of heads_kv; query head h reads key/value head h / (heads_q / heads_kv).
 *  - Causal masking is bottom-right aligned (as in FlashAttention 2+): query i may attend to key j
 *    when j <= i + seqlen_k - seqlen_q. A query row that sees no key at all gets a zero output and an
 *    LSE of -infinity.
 *  - Scores are softmax_scale * (q . k); the host always passes the scale (1/sqrt(head_dim) unless
 *    the caller chose another).
 *  - Since ABI 1.2, a problem may be split over `ranks` > 1 devices (sequence parallelism): each
 *    rank calls run() with its own shard of q, k, v and out (seqlen_q and seqlen_k are the shard's
 *    lengths) and the group's communicator (an ncclComm_t for CUDA) in pfa_run_args. Causal shards
 *    hold two mirrored chunks each: with 2 * ranks chunks of equal length, rank r holds chunk r
 *    followed by chunk 2 * ranks - 1 - r (pfa/sequence_sharding.h). Only backends that declare
 *    PFA_PROP_DISTRIBUTED are ever given such a problem; a host older than 1.2 never sends one.
 */
#ifndef PFA_PLUGIN_ABI_H
#define PFA_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

#define PFA_ABI_VERSION_MAJOR 1u
#define PFA_ABI_VERSION_MINOR 2u
#define PFA_PLUGIN_ENTRY_SYMBOL "pfa_plugin_entry"

#ifdef __cplusplus
#define PFA_EXTERN_C extern "C"
#else
#define PFA_EXTERN_C
#endif
#define PFA_PLUGIN_EXPORT PFA_EXTERN_C __attribute__((visibility("default")))

/* True when the side that filled *ptr wrote `field` (it fits inside the struct_size it set). */
#define PFA_STRUCT_HAS(ptr, type, field) \
  ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type*)0)->field))

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pfa_status {
  PFA_STATUS_OK = 0,
  PFA_STATUS_UNSUPPORTED = 1,      /* outside what this backend serves; the message says why */
  PFA_STATUS_INVALID_ARGUMENT = 2, /* the host passed something that breaks the conventions */
  PFA_STATUS_OUT_OF_MEMORY = 3,
  PFA_STATUS_DEVICE_ERROR = 4,     /* a CUDA or driver error; the message carries its text */
  PFA_STATUS_ABI_MISMATCH = 5,
  PFA_STATUS_INTERNAL = 6
} pfa_status;

typedef enum pfa_dtype {
  PFA_DTYPE_FP32 = 0,
  PFA_DTYPE_FP16 = 1,
  PFA_DTYPE_BF16 = 2
} pfa_dtype;

/* How the caller's q/k/v memory is laid out; a routing feature, not a constraint on run(). */
typedef enum pfa_layout {
  PFA_LAYOUT_BSHD = 0,   /* contiguous [batch, seq, heads, dim] */
  PFA_LAYOUT_BHSD = 1,   /* contiguous [batch, heads, seq, dim] */
  PFA_LAYOUT_STRIDED = 2 /* anything else with a unit head_dim stride */
} pfa_layout;

/* Declared properties of a backend (pfa_plugin_api.properties). */
enum pfa_property_flags {
  PFA_PROP_APPROXIMATE = 1u << 0, /* output differs from exact attention by design */
  PFA_PROP_SIMULATED = 1u << 1,   /* latency/energy come from a model, not a measurement */
  PFA_PROP_THREAD_SAFE = 1u << 2, /* run() may be called concurrently on one context */
  PFA_PROP_DISTRIBUTED = 1u << 3  /* serves problems split over several devices (ranks > 1) */
};

/* One attention problem: everything a backend needs to decide whether and how fast it can run. */
typedef struct pfa_problem {
  size_t struct_size;
  int64_t batch;
  int64_t heads_q;
  int64_t heads_kv;
  int64_t seqlen_q;
  int64_t seqlen_k;
  int64_t head_dim;
  int32_t dtype;       /* pfa_dtype */
  int32_t layout;      /* pfa_layout */
  int32_t causal;      /* 0 or 1, bottom-right aligned */
  int32_t want_lse;    /* 0 or 1 */
  float softmax_scale;
  int32_t device_type; /* DLDeviceType: kDLCPU, kDLCUDA, ... */
  int32_t device_id;
  /* Since ABI 1.2. Devices the sequence is split over (1 = one device; see the conventions above).
   * A field the caller's struct lacks reads as 1. */
  int32_t ranks;
} pfa_problem;

/* The tensors of one call. See the conventions at the top of this file. */
typedef struct pfa_run_args {
  size_t struct_size;
  const pfa_problem* problem;
  const DLTensor* q;
  const DLTensor* k;
  const DLTensor* v;
  DLTensor* out;
  DLTensor* lse;   /* NULL unless problem->want_lse */
  void* stream;    /* cudaStream_t on CUDA devices (NULL = default stream); unused on CPU */
  /* Since ABI 1.2. The group's communicator when problem->ranks > 1 (ncclComm_t on CUDA), owned
   * by the application; NULL otherwise. */
  void* communicator;
} pfa_run_args;

/* What a backend reports about one run, beyond the output. The host times the call itself. */
typedef struct pfa_run_result {
  size_t struct_size;
  double modelled_latency_s; /* simulated backends: the device model's latency; else 0 */
  double energy_j;           /* < 0 when the backend cannot tell */
  int32_t energy_measured;   /* 1 when energy_j is a measurement, 0 when it is modelled */
  double error_estimate;     /* expected relative output error (0 for exact backends) */
  char detail[64];           /* which internal path ran, e.g. "avx512", "math", "sm90a" */
  /* Since ABI 1.1. Relative error against exact attention measured on this call's own data
   * (sampled rows when large), or < 0 when not measured. Write it only when PFA_STRUCT_HAS says
   * the host's struct has it. */
  double measured_rel_error;
} pfa_run_result;

/* An analytic prior for the router's cold start (roofline or device model). */
typedef struct pfa_estimate {
  size_t struct_size;
  double latency_s;
  double energy_j;  /* < 0 when unknown */
  double rel_error; /* expected relative output error (0 for exact backends) */
} pfa_estimate;

/* Identifies the device a backend runs on, for the execution store's device fingerprint. */
typedef struct pfa_device_info {
  size_t struct_size;
  char name[128];   /* e.g. "NVIDIA H100 80GB HBM3" or the CPU model */
  char detail[256]; /* e.g. "sm_90 driver 13.0 runtime 13.0" or "avx512 amx 2 threads" */
} pfa_device_info;

/* What the host tells a plugin about itself. */
typedef struct pfa_host_info {
  size_t struct_size;
  uint32_t abi_major;
  uint32_t abi_minor;
  const char* host_version; /* pfa's version string */
} pfa_host_info;

typedef struct pfa_context pfa_context; /* a plugin's own state, opaque to the host */

/*
 * The function table a plugin returns. Every function that can fail takes a message buffer
 * (message, capacity) and writes a NUL-terminated explanation there when it returns non-OK.
 */
typedef struct pfa_plugin_api {
  size_t struct_size;
  uint32_t abi_major;
  uint32_t abi_minor;
  const char* name;        /* short unique name, e.g. "cpu_flash" */
  const char* version;     /* the plugin's own version */
  const char* description; /* one line for `pfa-tune plugins` */
  uint32_t properties;     /* pfa_property_flags */
  uint32_t device_types;   /* bit (1u << DLDeviceType) for each device type it can serve */

  pfa_status (*create)(const pfa_host_info* host, pfa_context** context, char* message,
                       size_t capacity);
  void (*destroy)(pfa_context* context);

  /* PFA_STATUS_OK when the backend can serve the problem, PFA_STATUS_UNSUPPORTED + reason if not. */
  pfa_status (*supports)(pfa_context* context, const pfa_problem* problem, char* reason,
                         size_t capacity);

  /* A cost prior from an analytic model; must be cheap and must not touch the device. */
  pfa_status (*estimate)(pfa_context* context, const pfa_problem* problem, pfa_estimate* estimate,
                         char* message, size_t capacity);

  /* Computes attention into args->out (and args->lse). May be asynchronous on the given stream;
   * must not synchronise it. `result` may be NULL. */
  pfa_status (*run)(pfa_context* context, const pfa_run_args* args, pfa_run_result* result,
                    char* message, size_t capacity);

  /* Describes a device this backend serves; for the store's device fingerprint. */
  pfa_status (*device_info)(pfa_context* context, int32_t device_type, int32_t device_id,
                            pfa_device_info* info, char* message, size_t capacity);

  const void* extensions; /* reserved for an extension chain; NULL for now */
} pfa_plugin_api;

/*
 * The one exported symbol. Returns PFA_STATUS_ABI_MISMATCH (and a message) when the host's major
 * version differs from the plugin's; otherwise sets *api to a table that lives as long as the
 * library stays loaded.
 */
typedef pfa_status (*pfa_plugin_entry_fn)(const pfa_host_info* host, const pfa_plugin_api** api,
                                          char* message, size_t capacity);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PFA_PLUGIN_ABI_H */

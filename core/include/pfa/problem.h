// The attention problem as the router and the store see it: pfa_problem plus helpers to name,
// parse and measure it.
#pragma once

#include <pfa/plugin_abi.h>

#include <string>
#include <string_view>

namespace pfa {

using Problem = pfa_problem;

// A problem with struct_size set and the usual defaults (CPU, BSHD, scale 1/sqrt(head_dim)).
Problem make_problem(int64_t batch, int64_t heads_q, int64_t heads_kv, int64_t seqlen_q,
                     int64_t seqlen_k, int64_t head_dim, pfa_dtype dtype, bool causal);

// Devices the problem is split over: problem.ranks, or 1 where it is unset or the struct predates it.
int32_t ranks_of(const Problem& problem) noexcept;

// The whole sequence of a split problem (lengths times ranks, ranks = 1); the problem itself when
// it is not split.
Problem global_problem(const Problem& problem) noexcept;

const char* dtype_name(int32_t dtype) noexcept;     // "fp32", "fp16", "bf16"
const char* layout_name(int32_t layout) noexcept;   // "bshd", "bhsd", "strided"
const char* device_name(int32_t dl_device_type) noexcept;  // "cpu", "cuda", ...
size_t dtype_size(int32_t dtype) noexcept;

// Parses "fp32" / "float32" / "fp16" / "half" / "bf16" / "bfloat16"; throws pfa::Error.
pfa_dtype parse_dtype(std::string_view text);

// Parses "batch=2,heads_q=16,heads_kv=16,seqlen_q=4096,seqlen_k=4096,head_dim=128,dtype=bf16,
// causal=1" (optional: device=cpu|cuda, layout=bshd|bhsd, lse=0|1, scale=F, ranks=N for one
// rank's shard of a sequence split over N devices). seqlen_k defaults
// to seqlen_q, heads_kv to heads_q. Throws pfa::Error naming the bad field.
Problem parse_problem(std::string_view text);

// The same "key=value,..." form parse_problem reads.
std::string to_string(const Problem& problem);

// Matrix-product FLOPs: 4 * B * Hq * Lq * Lk * D, counting only the unmasked part when causal;
// for a split problem, one rank's share of the whole sequence's FLOPs.
double attention_flops(const Problem& problem) noexcept;

// Query/key pairs the causal mask leaves visible (bottom-right aligned); Lq * Lk when not causal.
double visible_pairs(const Problem& problem) noexcept;

}  // namespace pfa

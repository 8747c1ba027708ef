// cpu_flash: exact attention on the CPU, FlashAttention-2 style (a tile of query rows stays put
// while key/value blocks stream past; running max and sum rescale the output), fp32 accumulation,
// oneTBB across (batch, head, query tile). The inner loops come in one version per instruction set
// and the best one the CPU can run is picked at run time.
#pragma once

#include <pfa/kernels/attention_params.h>

namespace pfa::kernels::cpu {

// Inner-loop implementations, slowest to fastest. avx512_bf16 and amx compute the matrix products
// in bf16 (fp32 accumulation) and serve bf16 inputs only; fp32 and fp16 inputs use fp32 products.
enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2, avx512_bf16 = 3, amx = 4 };

const char* isa_name(Isa isa) noexcept;  // "scalar", "avx2", "avx512", "avx512_bf16", "amx"

// True when this CPU (and, for AMX, the kernel's permission to use tile state) can run `isa`.
bool isa_available(Isa isa) noexcept;

// The fastest path for inputs of `dtype` on this CPU (amx for bf16 where present, else the widest
// fp32 path; avx512_bf16 runs only when asked for, see bench/cpu/NOTES.md).
Isa best_isa(DType dtype) noexcept;

// The path that actually runs when `requested` is asked for with inputs of `dtype`: bf16 paths
// serve only bf16 inputs, so fp32/fp16 fall back to the widest fp32 path at or below the request.
Isa resolve_isa(Isa requested, DType dtype) noexcept;

// Computes attention as described by `params` with the best path for its dtype (for seqlen_q <= 8,
// a decode step, the AVX-512 path rather than AMX's 32-row tiles); returns the path that ran.
// Throws std::invalid_argument for inconsistent params (null pointers, bad sizes or strides).
Isa flash_attention(const AttentionParams& params);

// Same, forcing a path (tests, benchmarks). Throws std::invalid_argument if the CPU can't run it.
Isa flash_attention(const AttentionParams& params, Isa isa);

}  // namespace pfa::kernels::cpu

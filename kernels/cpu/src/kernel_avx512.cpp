// AVX-512 fp32 path: 16-lane FMAs, a 6x64 score micro-tile (24 accumulators) and a 6x64 output
// micro-tile. fp16 and bf16 inputs are widened to fp32 when loaded.
#include "avx512_vec.h"
#include "fp32_tile_kernel.h"

namespace pfa::kernels::cpu {

const KernelOps kAvx512Ops = {16, 1, sizeof(float), &pack_block_fp32<Avx512Vec>,
                              &run_tile_fp32<Avx512Vec>,
                              &run_decode_fp32<Avx512Vec>};

}  // namespace pfa::kernels::cpu

// The shared plan of one attention call: how it is cut into query tiles and key/value blocks,
// where the packed blocks live, and the function table each instruction-set path fills in.
#pragma once

#include <pfa/kernels/attention_params.h>

#include <cstddef>
#include <cstdint>

namespace pfa::kernels::cpu {

// Keys per block. 64 keeps a block's scores of one query row in four AVX-512 registers and the
// packed K and V blocks (64 x 128 fp32 = 32 KiB each) in L2 next to the query tile.
constexpr int64_t kBlockKeys = 64;
// Query rows per tile, at most. Smaller tiles are used when there would be too few to share.
constexpr int64_t kMaxTileRows = 64;
constexpr int64_t kMaxHeadDim = 256;

struct Plan {
  AttentionParams p;
  int64_t group = 1;        // query heads per key/value head
  int64_t dp = 0;           // head_dim padded to the path's alignment (zeros beyond head_dim)
  int64_t tile_rows = 0;    // query rows per tile
  int64_t n_qtiles = 0;
  int64_t n_kblocks = 0;
  int64_t block_elems = 0;  // elements in one packed K (or V) block
  float q_scale = 1.0f;     // softmax_scale * log2(e): scores come out in base-2 exponent units
  void* kpack = nullptr;    // [batch][heads_kv][n_kblocks] packed K blocks
  void* vpack = nullptr;    // same for V

  // Keys query row i may see: [0, visible_end(i)). Bottom-right causal alignment.
  int64_t visible_end(int64_t i) const {
    if (!p.causal) return p.seqlen_k;
    const int64_t e = i + p.seqlen_k - p.seqlen_q + 1;
    return e < 0 ? 0 : (e > p.seqlen_k ? p.seqlen_k : e);
  }
  int64_t block_index(int64_t b, int64_t hk, int64_t kb) const {
    return (b * p.heads_kv + hk) * n_kblocks + kb;
  }
};

// Per-thread working memory for one query tile, 64-byte aligned.
struct Scratch {
  float* q = nullptr;      // [tile_rows][dp] scaled queries
  float* o = nullptr;      // [tile_rows][dp] unnormalised output
  float* s = nullptr;      // [tile_rows][kBlockKeys] scores, then probabilities
  float* m = nullptr;      // [tile_rows] running max (base-2 units)
  float* l = nullptr;      // [tile_rows] running sum
  float* alpha = nullptr;  // [tile_rows] rescale of this block
  float* lv = nullptr;     // [tile_rows][16] running sums kept as vectors (bf16 paths)
  uint16_t* q16 = nullptr; // [tile_rows][dp] bf16 queries (bf16 paths)
  uint16_t* p16 = nullptr; // [tile_rows][kBlockKeys] bf16 probabilities (bf16 paths)
};

struct KernelOps {
  int64_t dim_align;     // dp is head_dim rounded up to this
  int64_t row_align;     // tile_rows is a multiple of this (AMX tiles have 16 rows)
  size_t pack_elem_size; // bytes per packed element
  // Packs key/value block kb of (batch b, kv head hk) into plan.kpack / plan.vpack.
  void (*pack_block)(const Plan& plan, int64_t b, int64_t hk, int64_t kb);
  // Computes query tile qt of (batch b, query head h), writing out (and lse).
  void (*run_tile)(const Plan& plan, int64_t b, int64_t h, int64_t qt, Scratch& scratch);
  // Decode (a few query rows): every query row of every query head sharing key/value head hk of
  // batch b in one pass, packing each key/value block into `kt`/`vb` (block_elems floats each)
  // as it goes instead of packing the whole K/V beforehand. Null where the path has none.
  void (*run_decode)(const Plan& plan, int64_t b, int64_t hk, Scratch& scratch, float* kt,
                     float* vb) = nullptr;
};

extern const KernelOps kScalarOps;
extern const KernelOps kAvx2Ops;
extern const KernelOps kAvx512Ops;
extern const KernelOps kAvx512Bf16Ops;
extern const KernelOps kAmxOps;

}  // namespace pfa::kernels::cpu

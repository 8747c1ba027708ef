// FlashAttention-2-style forward attention for sm_80 and newer: cp.async (16-byte, zero-filling)
// streams K and V blocks into padded shared memory, ldmatrix (.trans for V) feeds
// mma.sync.m16n8k16 with fp32 accumulators, and the online softmax runs in fp32 registers with
// exp2 and the scale folded in. P goes from the S accumulators to 16-bit A fragments of the P·V
// product without touching shared memory. Runs on Ampere, Ada and Hopper (where the sm_90a kernel
// doesn't apply). One instantiation per (head dim, dtype) in its own generated translation unit.
//
// Per CTA: BM query rows, WARPS warps, each warp owning MT = BM / (16 * WARPS) m16 row tiles.
// K and V have STAGES slots each; their loads are separate cp.async groups issued in the order
// K0 V0 K1 V1 ..., so that, with one slot each, V_j lands while S_j = Q·K_jᵀ and its softmax
// run, and K_{j+1} while P_j·V_j runs. Key blocks are walked from the last visible one down to
// block 0, so the blocks that need a mask (causal diagonal, key tail) come first and the rest run
// unmasked. Head dims between the compiled ones run on the next one up with zero-filled columns.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "fa2_sm80_registry.h"

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ < 800)
#define PFA_SM80_ENABLED 0
#else
#define PFA_SM80_ENABLED 1
#endif

namespace pfa::kernels::sm80 {

struct Fa2Args {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  float* lse;  // [batch][heads_q][seqlen_q] or null
  int64_t q_stride[3];  // batch, seq, head (elements)
  int64_t k_stride[3];
  int64_t v_stride[3];
  int64_t o_stride[3];
  int seqlen_q;
  int seqlen_k;
  int heads_q;
  int group;      // heads_q / heads_kv
  int head_dim;   // the problem's head dim: a multiple of 8, at most the kernel's D
  int m_blocks;   // query tiles per (batch, head)
  float scale_log2;  // softmax scale * log2(e), > 0
  int causal;
  int out_vec;    // 1: out and its strides allow 16-byte stores
};

// Tile shape per head dim. BM = 128 everywhere: K/V cross from L2 at 1/BM bytes per FLOP. Up to
// D = 128 a warp owns 32 rows (MT = 2), so every K/V fragment read from shared memory feeds two
// mma; from D = 160 the fp32 O accumulators of 32 rows no longer fit in 255 registers, so 8 warps
// own 16 rows each. Key block and stage count: the fastest tried on an H100 (bench/gpu/NOTES.md).
// Shared memory = (BM + 2·STAGES·BN) rows of D + 8 elements (the 16-byte pad makes every ldmatrix
// phase and every fragment store conflict-free); every shape stays within 101376 bytes, the
// opt-in limit of sm_86/sm_89, so one binary serves all of cc 8.x and 9.0.
template <int D>
struct Fa2Shape;
template <> struct Fa2Shape<64>  { static constexpr int BM = 128, BN = 64, WARPS = 4, STAGES = 2; };
template <> struct Fa2Shape<96>  { static constexpr int BM = 128, BN = 32, WARPS = 4, STAGES = 2; };
template <> struct Fa2Shape<128> { static constexpr int BM = 128, BN = 32, WARPS = 4, STAGES = 2; };
template <> struct Fa2Shape<160> { static constexpr int BM = 128, BN = 64, WARPS = 8, STAGES = 1; };
template <> struct Fa2Shape<192> { static constexpr int BM = 128, BN = 48, WARPS = 8, STAGES = 1; };
template <> struct Fa2Shape<256> { static constexpr int BM = 128, BN = 32, WARPS = 8, STAGES = 1; };

template <int D_>
struct Fa2Traits {
  static constexpr int D = D_;
  static constexpr int BM = Fa2Shape<D>::BM;
  static constexpr int BN = Fa2Shape<D>::BN;
  static constexpr int WARPS = Fa2Shape<D>::WARPS;
  static constexpr int STAGES = Fa2Shape<D>::STAGES;
  static constexpr int Threads = WARPS * 32;
  static constexpr int MT = BM / (16 * WARPS);  // m16 tiles per warp
  static constexpr int NT = BN / 8;             // n8 tiles of S per warp
  static constexpr int DT = D / 8;              // n8 tiles of O per warp
  static constexpr int LD = D + 8;              // shared-memory row, elements
  static constexpr int Chunks = D / 8;          // 16-byte chunks per row
  static constexpr int SmemBytes = (BM + 2 * STAGES * BN) * LD * 2;
  static_assert(D % 32 == 0 && D <= 256, "head dim");
  static_assert(BM % (16 * WARPS) == 0 && MT >= 1, "rows per warp");
  static_assert(BN % 16 == 0, "key block");
  static_assert(STAGES >= 1, "stages");
  static_assert(SmemBytes <= 101376, "must fit sm_86/sm_89 shared memory");
};

// ---- sm_80 building blocks (valid on sm_80, sm_86, sm_89, sm_90) ------------------------------
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, bypassing L1; src_bytes < 16 zero-fills the rest (0: nothing read).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// d += a · b, m16n8k16, 16-bit inputs, fp32 accumulators.
template <bool Bf16>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  if constexpr (Bf16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Two floats to a packed pair of 16-bit values (lo in the low half), round to nearest.
template <bool Bf16>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  uint32_t r;
  if constexpr (Bf16) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    r = *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    r = *reinterpret_cast<const uint32_t*>(&v);
  }
  return r;
}

// ROWS x D tile of global rows [row0, row0 + ROWS) into shared memory (row pitch LD), every
// thread of the CTA taking 16-byte chunks in turn. Rows at or past row_end and chunks past the
// problem's head dim are zero-filled without reading global memory.
template <class Tr, int ROWS>
__device__ __forceinline__ void load_tile(uint32_t dst, const uint16_t* g, int64_t row_stride,
                                          int row0, int row_end, int chunks, int tid) {
  constexpr int kTotal = ROWS * Tr::Chunks;
  constexpr int kIters = (kTotal + Tr::Threads - 1) / Tr::Threads;
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const int idx = tid + i * Tr::Threads;
    if (kTotal % Tr::Threads == 0 || idx < kTotal) {
      const int r = idx / Tr::Chunks, c = idx % Tr::Chunks;
      const int row = row0 + r;
      const bool ok = row < row_end && c < chunks;
      const uint16_t* src = ok ? g + int64_t(row) * row_stride + c * 8 : g;
      cp_async16(dst + uint32_t((r * Tr::LD + c * 8) * 2), src, ok ? 16 : 0);
    }
  }
}

template <int D, bool Bf16>
__global__ void __launch_bounds__(Fa2Traits<D>::Threads, 1) fa2_fwd_kernel(const Fa2Args a) {
#if PFA_SM80_ENABLED
  using Tr = Fa2Traits<D>;
  constexpr int BM = Tr::BM, BN = Tr::BN, MT = Tr::MT, NT = Tr::NT, DT = Tr::DT, LD = Tr::LD;
  constexpr int STAGES = Tr::STAGES;
  constexpr int kRowsPerWarp = 16 * MT;
  extern __shared__ __align__(16) uint16_t smem[];
  uint16_t* const s_q = smem;
  const uint32_t sq = smem_u32(s_q);
  const uint32_t sk = sq + uint32_t(BM * LD * 2);
  const uint32_t sv = sk + uint32_t(STAGES * BN * LD * 2);
  constexpr uint32_t kSlotBytes = BN * LD * 2;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  // Tiles: query block fastest, so the CTAs of one head run together and share K/V in L2;
  // causal walks each head's heaviest (last) query blocks first.
  const int64_t tile = blockIdx.x;
  int mb = int(tile % a.m_blocks);
  const int64_t bh = tile / a.m_blocks;
  if (a.causal) mb = a.m_blocks - 1 - mb;
  const int h = int(bh % a.heads_q);
  const int64_t b = bh / a.heads_q;
  const int hk = h / a.group;
  const int m0 = mb * BM;
  const int Lq = a.seqlen_q, Lk = a.seqlen_k;
  const int diag = Lk - Lq;  // causal: row i sees keys j <= i + diag
  const int chunks = a.head_dim / 8;

  const uint16_t* gq = static_cast<const uint16_t*>(a.q) + b * a.q_stride[0] + h * a.q_stride[2];
  const uint16_t* gk = static_cast<const uint16_t*>(a.k) + b * a.k_stride[0] + hk * a.k_stride[2];
  const uint16_t* gv = static_cast<const uint16_t*>(a.v) + b * a.v_stride[0] + hk * a.v_stride[2];

  // Key blocks [0, nb) hold a key some real row of this tile sees; [0, n_full) need no mask.
  int n_end = Lk, full_end = Lk;
  if (a.causal) {
    n_end = min(m0 + BM, Lq) + diag;
    full_end = min(Lk, m0 + diag + 1);
  }
  const int nb = n_end > 0 ? (n_end + BN - 1) / BN : 0;
  const int n_full = full_end > 0 ? full_end / BN : 0;

  float o[MT][DT][4];
  float m_s[MT][2], l_s[MT][2];  // running max (scaled by log2 e) and partial sum per row half
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int dt = 0; dt < DT; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mt][dt][e] = 0.f;
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      m_s[mt][hf] = -INFINITY;
      l_s[mt][hf] = 0.f;
    }
  }

  const int warp_row0 = warp * kRowsPerWarp;  // first row of this warp within the tile
  // ldmatrix lane addressing (byte offsets inside a tile): A and V.trans take rows lane % 16 and
  // column half lane / 16; K (B operand, not transposed) takes rows lane % 8 + 8 * (lane / 16)
  // and column half (lane / 8) % 2.
  const uint32_t a_off = uint32_t(((lane & 15) * LD + (lane >> 4) * 8) * 2);
  const uint32_t k_off =
      uint32_t((((lane & 7) + ((lane >> 4) << 3)) * LD + ((lane >> 3) & 1) * 8) * 2);

  if (nb > 0) {
    load_tile<Tr, BM>(sq, gq, a.q_stride[1], m0, Lq, chunks, tid);
    cp_async_commit();
#pragma unroll
    for (int s = 0; s < STAGES; ++s) {
      if (s < nb)
        load_tile<Tr, BN>(sk + s * kSlotBytes, gk, a.k_stride[1], (nb - 1 - s) * BN, Lk, chunks,
                          tid);
      cp_async_commit();
      if (s < STAGES - 1) {
        if (s < nb)
          load_tile<Tr, BN>(sv + s * kSlotBytes, gv, a.v_stride[1], (nb - 1 - s) * BN, Lk,
                            chunks, tid);
        cp_async_commit();
      }
    }

    for (int it = 0; it < nb; ++it) {
      const int j = nb - 1 - it;
      const uint32_t slot = uint32_t(it % STAGES) * kSlotBytes;
      // K_j (and Q) landed; every warp finished P·V of the previous block, so its V slot is free.
      cp_async_wait<2 * STAGES - 2>();
      __syncthreads();
      {
        const int itv = it + STAGES - 1;
        if (itv < nb)
          load_tile<Tr, BN>(sv + uint32_t(itv % STAGES) * kSlotBytes, gv, a.v_stride[1],
                            (nb - 1 - itv) * BN, Lk, chunks, tid);
        cp_async_commit();
      }

      // S = Q · K_jᵀ
      float s[MT][NT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.f;
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t qa[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
          ldmatrix_x4(qa[mt], sq + uint32_t(((warp_row0 + mt * 16) * LD + kk * 16) * 2) + a_off);
#pragma unroll
        for (int np = 0; np < NT / 2; ++np) {
          uint32_t kb[4];
          ldmatrix_x4(kb, sk + slot + uint32_t((np * 16 * LD + kk * 16) * 2) + k_off);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            mma16816<Bf16>(s[mt][2 * np], qa[mt], kb[0], kb[1]);
            mma16816<Bf16>(s[mt][2 * np + 1], qa[mt], kb[2], kb[3]);
          }
        }
      }

      // Mask the diagonal and tail blocks only.
      if (j >= n_full) {
        const int key0 = j * BN + 2 * (lane & 3);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int hf = 0; hf < 2; ++hf) {
            const int row = m0 + warp_row0 + mt * 16 + hf * 8 + (lane >> 2);
            const int limit = a.causal ? min(row + diag, Lk - 1) : Lk - 1;
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
#pragma unroll
              for (int e = 0; e < 2; ++e)
                if (key0 + nt * 8 + e > limit) s[mt][nt][2 * hf + e] = -INFINITY;
          }
      }

      // Online softmax in fp32 (scale folded into exp2), O rescaled, P packed to 16 bits in the
      // A-fragment order of the P·V product: a0a1 = S tile 2kk rows r, a2a3 = rows r + 8,
      // a4a5/a6a7 = S tile 2kk + 1.
      uint32_t pa[MT][BN / 16][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          float mx = -INFINITY;
#pragma unroll
          for (int nt = 0; nt < NT; ++nt)
            mx = fmaxf(mx, fmaxf(s[mt][nt][2 * hf], s[mt][nt][2 * hf + 1]));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          const float m_new = fmaxf(m_s[mt][hf], mx * a.scale_log2);
          const float m_use = m_new == -INFINITY ? 0.f : m_new;
          const float alpha = fast_exp2(m_s[mt][hf] - m_use);
          m_s[mt][hf] = m_new;
          float sum = 0.f;
#pragma unroll
          for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const float p = fast_exp2(fmaf(s[mt][nt][2 * hf + e], a.scale_log2, -m_use));
              s[mt][nt][2 * hf + e] = p;
              sum += p;
            }
          l_s[mt][hf] = l_s[mt][hf] * alpha + sum;
#pragma unroll
          for (int dt = 0; dt < DT; ++dt) {
            o[mt][dt][2 * hf] *= alpha;
            o[mt][dt][2 * hf + 1] *= alpha;
          }
        }
#pragma unroll
        for (int kk = 0; kk < BN / 16; ++kk) {
          pa[mt][kk][0] = pack2<Bf16>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
          pa[mt][kk][1] = pack2<Bf16>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
          pa[mt][kk][2] = pack2<Bf16>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
          pa[mt][kk][3] = pack2<Bf16>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
        }
      }

      // V_j landed; every warp is done reading K_j, so its slot takes K_{j - STAGES}.
      cp_async_wait<2 * STAGES - 2>();
      __syncthreads();
      {
        const int itk = it + STAGES;
        if (itk < nb)
          load_tile<Tr, BN>(sk + uint32_t(itk % STAGES) * kSlotBytes, gk, a.k_stride[1],
                            (nb - 1 - itk) * BN, Lk, chunks, tid);
        cp_async_commit();
      }

      // O += P · V_j
#pragma unroll
      for (int kk = 0; kk < BN / 16; ++kk)
#pragma unroll
        for (int dp = 0; dp < DT / 2; ++dp) {
          uint32_t vb[4];
          ldmatrix_x4_trans(vb, sv + slot + uint32_t((kk * 16 * LD + dp * 16) * 2) + a_off);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            mma16816<Bf16>(o[mt][2 * dp], pa[mt][kk], vb[0], vb[1]);
            mma16816<Bf16>(o[mt][2 * dp + 1], pa[mt][kk], vb[2], vb[3]);
          }
        }
    }
    cp_async_wait<0>();  // only empty groups can be left; keeps the epilogue's reuse obvious
  }

  // Epilogue: normalise, stage this warp's rows in its own part of the Q tile (only this warp
  // ever read it), then 16-byte coalesced stores. LSE (natural log) per real row.
  uint16_t* const s_o = s_q + warp_row0 * LD;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      float l = l_s[mt][hf];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const float inv = l > 0.f ? 1.f / l : 0.f;
      const int r = mt * 16 + hf * 8 + (lane >> 2);
#pragma unroll
      for (int dt = 0; dt < DT; ++dt)
        *reinterpret_cast<uint32_t*>(s_o + r * LD + dt * 8 + 2 * (lane & 3)) =
            pack2<Bf16>(o[mt][dt][2 * hf] * inv, o[mt][dt][2 * hf + 1] * inv);
      const int row = m0 + warp_row0 + r;
      if (a.lse != nullptr && (lane & 3) == 0 && row < Lq)
        a.lse[(b * a.heads_q + h) * int64_t(Lq) + row] =
            l > 0.f ? (m_s[mt][hf] + __log2f(l)) * 0.69314718055994530942f : -INFINITY;
    }
  __syncwarp();
  uint16_t* const go = static_cast<uint16_t*>(a.out) + b * a.o_stride[0] + h * a.o_stride[2];
  constexpr int kOut = kRowsPerWarp * Tr::Chunks;
#pragma unroll
  for (int i = 0; i < (kOut + 31) / 32; ++i) {
    const int idx = lane + 32 * i;
    if (kOut % 32 == 0 || idx < kOut) {
      const int r = idx / Tr::Chunks, c = idx % Tr::Chunks;
      const int row = m0 + warp_row0 + r;
      if (row < Lq && c < chunks) {
        const uint4 val = *reinterpret_cast<const uint4*>(s_o + r * LD + c * 8);
        uint16_t* dst = go + int64_t(row) * a.o_stride[1] + c * 8;
        if (a.out_vec) {
          *reinterpret_cast<uint4*>(dst) = val;
        } else {
          const uint32_t w[4] = {val.x, val.y, val.z, val.w};
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            dst[2 * e] = uint16_t(w[e] & 0xffffu);
            dst[2 * e + 1] = uint16_t(w[e] >> 16);
          }
        }
      }
    }
  }
#endif
}

template <int D, bool Bf16>
cudaError_t launch_fa2(const Fa2Args& args, int64_t grid, cudaStream_t stream) {
  using Tr = Fa2Traits<D>;
  auto kernel = fa2_fwd_kernel<D, Bf16>;
  cudaError_t err =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Tr::SmemBytes);
  if (err != cudaSuccess) return err;
  kernel<<<unsigned(grid), Tr::Threads, Tr::SmemBytes, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace pfa::kernels::sm80

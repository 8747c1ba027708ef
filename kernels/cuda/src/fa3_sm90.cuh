// FlashAttention-3-style forward kernel for Hopper (sm_90a).
//
// One CTA computes a 128-row query tile of one (batch, head): three warpgroups.
//  - warpgroup 0, the producer, gives its registers away (setmaxnreg) and has one thread issue
//    the bulk tensor copies (TMA) of Q once and of K and V block by block into a Stages-deep ring
//    of shared-memory buffers, each completing on a transaction mbarrier;
//  - warpgroups 1 and 2, the consumers, take 64 query rows each, compute S = Q K^T with wgmma
//    (both operands in shared memory), the online softmax in fp32 registers (exp2, scale folded),
//    and O += P V with wgmma (P from registers, V read transposed from shared memory).
// Variants: 0 = one block at a time; 1 = the next block's Q K^T is issued before this block's
// softmax (intra-warpgroup overlap); 2 = 1 plus ping-pong, where named barriers make the two
// consumer warpgroups take turns issuing their matrix products so one's softmax runs under the
// other's products.
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "sm90_primitives.cuh"
#include "wgmma_ops.cuh"

namespace pfa::kernels::sm90 {

struct Fa3Args {
  void* out = nullptr;
  float* lse = nullptr;
  int64_t o_stride[3] = {0, 0, 0};  // batch, seq, head (elements)
  int seqlen_q = 0;
  int seqlen_k = 0;
  int heads_q = 0;
  int group = 1;  // heads_q / heads_kv
  float scale_log2 = 0.f;
  int causal = 0;
  int m_blocks = 0;  // query tiles per (batch, head)
  int tiles = 0;     // m_blocks * heads_q * batch
  int lpt = 0;       // tile order: 0 query block fastest, 1 query block slowest (see decode)
  int o_tma = 0;     // the output goes out through shared memory and a TMA store (see StageO)
};

template <int D_, int BN_, int Stages_, int Variant_>
struct Fa3Traits {
  static constexpr int D = D_;
  static constexpr int BM = 128;  // two consumer warpgroups x 64 rows
  static constexpr int BN = BN_;
  static constexpr int Stages = Stages_;
  static constexpr int Variant = Variant_;
  // Swizzled column panels: 64 elements (128-byte swizzle) where the head dim allows, else 32
  // (64-byte swizzle, head dim 96), so no column of shared memory or of a product is padding.
  static constexpr int PanelCols = D % 64 == 0 ? 64 : 32;
  static constexpr int PanelBytes = PanelCols * 2;
  static constexpr int Panels = D / PanelCols;
  static constexpr int KStepsPerPanel = PanelCols / 16;  // k16 steps of Q K^T inside one panel
  static constexpr int AtomBytes = 8 * PanelBytes;        // one 8-row swizzle atom
  static constexpr int QBytes = BM * D * 2;
  static constexpr int KVBytes = BN * D * 2;
  static constexpr int BarrierBytes = 8 * (2 + 4 * Stages);
  // The output tile is staged in shared memory and written by TMA stores, one thread per
  // warpgroup: the consumers then move on to the next tile instead of waiting on 4-byte global
  // stores. The staging buffer takes what the K/V ring leaves of the 227 KiB: all column panels
  // at once where they fit, else as many as fit, in rounds. Only where not even one panel fits
  // do threads store from registers.
  static constexpr int FixedBytes = QBytes + 2 * Stages * KVBytes + BarrierBytes + 1024;
  static constexpr int OPanelBytes = BM * PanelBytes;  // one panel, both warpgroups' rows
  static constexpr int OPanelsFit =
      FixedBytes < 227 * 1024 ? (227 * 1024 - FixedBytes) / OPanelBytes : 0;
  static constexpr int OPanelsPerRound = OPanelsFit < Panels ? OPanelsFit : Panels;
  static constexpr bool StageO = OPanelsPerRound > 0;
  static constexpr int ORounds = StageO ? (Panels + OPanelsPerRound - 1) / OPanelsPerRound : 0;
  static constexpr int OBytes = OPanelsPerRound * OPanelBytes;
  static constexpr int SmemBytes = FixedBytes + OBytes;
  static constexpr int Threads = 384;
  static_assert(D % 32 == 0 && D <= 256 && BN % 16 == 0 && BN <= 256, "tile shape");
  static_assert(QBytes % 1024 == 0 && KVBytes % 1024 == 0 && OPanelBytes % 1024 == 0,
                "swizzled buffers stay 1024-aligned");
};

template <bool Bf16>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  uint32_t r;
  if constexpr (Bf16) {
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  } else {
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  }
  return r;
}

// Online-softmax step on one S block held as wgmma accumulators: thread (warp w, lane 4g+t)
// holds rows g and g+8 of its warp's 16, columns 8j+2t and 8j+2t+1 for each j.
// Masks (when Mask), updates the running max m and sum l (per-thread partial sums, reduced in
// the epilogue), turns S into P in place (fp32) and returns the factor the output must be
// rescaled by.
template <int BN, bool Mask>
__device__ __forceinline__ void softmax_block(float (&s)[BN / 2], float (&m)[2], float (&l)[2],
                                              float (&rescale)[2],
                                              int col0, int lim0, int lim1, float scale_log2) {
  constexpr float kNegInf = -__builtin_huge_valf();
  if constexpr (Mask) {
#pragma unroll
    for (int i = 0; i < BN / 2; ++i) {
      const int col = col0 + 8 * (i / 4) + (i & 1);
      const int lim = (i & 2) ? lim1 : lim0;
      if (col > lim) s[i] = kNegInf;
    }
  }
  float mx[2] = {kNegInf, kNegInf};
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) mx[(i >> 1) & 1] = fmaxf(mx[(i >> 1) & 1], s[i]);
  float neg_m[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    const float m_new = fmaxf(m[r], mx[r] * scale_log2);
    // A row that has seen no key yet keeps m = -inf; use 0 so exp2 gives 0, not NaN.
    const float m_use = (m_new == kNegInf) ? 0.f : m_new;
    rescale[r] = fast_exp2(m[r] - m_use);
    m[r] = m_new;
    neg_m[r] = -m_use;
  }
  float sum[2] = {0.f, 0.f};
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) {
    const int r = (i >> 1) & 1;
    const float p = fast_exp2(fmaf(s[i], scale_log2, neg_m[r]));
    s[i] = p;
    sum[r] += p;
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) l[r] = l[r] * rescale[r] + sum[r];
}

// P as 16-bit pairs laid out as the A operand of the P V wgmma (the accumulator layout of S
// for 16 columns is exactly the A fragment of one k16 step).
template <int BN, bool Bf16>
__device__ __forceinline__ void pack_p(const float (&s)[BN / 2], uint32_t (&pk)[BN / 4]) {
#pragma unroll
  for (int i = 0; i < BN / 4; ++i) pk[i] = pack2<Bf16>(s[2 * i], s[2 * i + 1]);
}

template <int D>
__device__ __forceinline__ void rescale_o(float (&o)[D / 2], const float (&rescale)[2]) {
#pragma unroll
  for (int i = 0; i < D / 2; ++i) o[i] *= rescale[(i >> 1) & 1];
}

template <int D, int BN, int Stages, int Variant, bool Bf16>
__global__ void __launch_bounds__(384, 1)
    fa3_fwd_kernel(const __grid_constant__ CUtensorMap tm_q, const __grid_constant__ CUtensorMap tm_k,
                   const __grid_constant__ CUtensorMap tm_v, const __grid_constant__ CUtensorMap tm_o,
                   const Fa3Args args) {
#if PFA_SM90_ENABLED
  using Tr = Fa3Traits<D, BN, Stages, Variant>;
  constexpr int BM = Tr::BM;
  constexpr float kNegInf = -__builtin_huge_valf();
  constexpr int PB = Tr::PanelBytes, PC = Tr::PanelCols, KSP = Tr::KStepsPerPanel;
  extern __shared__ __align__(1024) uint8_t smem_raw[];
  const uint32_t raw = smem_addr(smem_raw);
  const uint32_t sQ = (raw + 1023u) & ~1023u;  // 128B swizzle atoms need 1024-byte alignment
  const uint32_t sK = sQ + Tr::QBytes;
  const uint32_t sV = sK + Stages * Tr::KVBytes;
  const uint32_t sO = sV + Stages * Tr::KVBytes;  // used when Tr::StageO
  const uint32_t sBar = sO + Tr::OBytes;
  const uint32_t q_full = sBar, q_empty = sBar + 8u;
  auto k_full = [&](int s) { return sBar + 8u * (2 + s); };
  auto k_empty = [&](int s) { return sBar + 8u * (2 + Stages + s); };
  auto v_full = [&](int s) { return sBar + 8u * (2 + 2 * Stages + s); };
  auto v_empty = [&](int s) { return sBar + 8u * (2 + 3 * Stages + s); };

  const int Lq = args.seqlen_q, Lk = args.seqlen_k;
  const int diag = Lk - Lq;  // bottom-right alignment: row i sees keys j <= i + diag
  // Tiles are numbered query block fastest, so the CTAs running at one time share (batch, head)
  // and its K/V stay in L2. A grid smaller than the tile count makes the kernel persistent:
  // each CTA walks tiles blockIdx.x, +gridDim.x, ... and the producer loads the next tile's Q and
  // K/V while the consumers finish the current one.
  struct Tile {
    int m0, head, head_kv, batch, n_end;
  };
  auto decode = [&](int tile) {
    Tile t;
    // lpt: the tile order is query block slowest, heaviest first across all heads (longest
    // processing time first), which balances a persistent causal launch when K/V fit in L2.
    const int bhs = args.tiles / args.m_blocks;
    const int mb = args.lpt ? tile / bhs : tile % args.m_blocks;
    const int bh = args.lpt ? tile % bhs : tile / args.m_blocks;
    // Causal: the heaviest query tiles (last rows) of each head first.
    t.m0 = (args.causal ? args.m_blocks - 1 - mb : mb) * BM;
    t.head = bh % args.heads_q;
    t.batch = bh / args.heads_q;
    t.head_kv = t.head / args.group;
    t.n_end = (Lk + BN - 1) / BN;
    if (args.causal) {
      const int last_key = t.m0 + BM - 1 + diag;
      t.n_end = last_key < 0 ? 0 : min(t.n_end, last_key / BN + 1);
    }
    return t;
  };

  const int warp_group = threadIdx.x / 128;
  if (threadIdx.x == 0) {
    mbar_init(q_full, 1);
    mbar_init(q_empty, 8);  // one arrival per consumer warp
    for (int s = 0; s < Stages; ++s) {
      mbar_init(k_full(s), 1);
      mbar_init(k_empty(s), 8);
      mbar_init(v_full(s), 1);
      mbar_init(v_empty(s), 8);
    }
    mbar_fence_init();
  }
  __syncthreads();

  if (warp_group == 0) {
    // ---------------- producer ----------------
    regs_dealloc<24>();
    if (threadIdx.x == 0) {
      tma_prefetch_desc(&tm_q);
      tma_prefetch_desc(&tm_k);
      tma_prefetch_desc(&tm_v);
      int q_it = 0, kv_it = 0;
      for (int tile = blockIdx.x; tile < args.tiles; tile += gridDim.x) {
        const Tile tl = decode(tile);
        if (tl.n_end == 0) continue;
        mbar_wait_suspend(q_empty, (q_it & 1) ^ 1);
        mbar_arrive_expect_tx(q_full, Tr::QBytes);
#pragma unroll
        for (int p = 0; p < Tr::Panels; ++p)
          tma_load_4d(sQ + p * BM * PB, &tm_q, q_full, p * PC, tl.m0, tl.head, tl.batch);
        ++q_it;
        for (int i = 0; i < tl.n_end; ++i, ++kv_it) {
          const int n = tl.n_end - 1 - i;
          const int s = kv_it % Stages;
          const uint32_t ph = (kv_it / Stages) & 1;
          mbar_wait_suspend(k_empty(s), ph ^ 1);
          mbar_arrive_expect_tx(k_full(s), Tr::KVBytes);
#pragma unroll
          for (int p = 0; p < Tr::Panels; ++p)
            tma_load_4d(sK + s * Tr::KVBytes + p * BN * PB, &tm_k, k_full(s), p * PC, n * BN,
                        tl.head_kv, tl.batch);
          mbar_wait_suspend(v_empty(s), ph ^ 1);
          mbar_arrive_expect_tx(v_full(s), Tr::KVBytes);
#pragma unroll
          for (int p = 0; p < Tr::Panels; ++p)
            tma_load_4d(sV + s * Tr::KVBytes + p * BN * PB, &tm_v, v_full(s), p * PC, n * BN,
                        tl.head_kv, tl.batch);
        }
      }
    }
  } else {
    // ---------------- consumers ----------------
    regs_alloc<240>();
    const int wg = warp_group - 1;
    const int tid = threadIdx.x % 128;
    const int warp = tid / 32, lane = tid % 32;
    const int g = lane / 4, t = lane % 4;
    const float scale_log2 = args.scale_log2;
    constexpr bool kPingPong = Variant == 2;
    const int my_bar = 1 + wg, other_bar = 2 - wg;
    // Ping-pong: the two consumers strictly alternate issuing their products, over all tiles;
    // warpgroup 0 goes first and takes warpgroup 1's last arrival at the end.
    if (kPingPong && wg == 1) named_arrive(1, 256);
    int q_it = 0, kv_it = 0;

    for (int tile = blockIdx.x; tile < args.tiles; tile += gridDim.x) {
      const Tile tl = decode(tile);
      const int n_end = tl.n_end, m0 = tl.m0;
      const int row0 = m0 + wg * 64 + warp * 16 + g;  // this thread's rows: row0 and row0 + 8
      const int lim_k = Lk - 1;
      const int lim0 = args.causal ? min(lim_k, row0 + diag) : lim_k;
      const int lim1 = args.causal ? min(lim_k, row0 + 8 + diag) : lim_k;

      float o[D / 2];
#pragma unroll
      for (int i = 0; i < D / 2; ++i) o[i] = 0.f;
      float m[2] = {kNegInf, kNegInf};
      float l[2] = {0.f, 0.f};
      float inv[2] = {0.f, 0.f};  // 1 / row sum, once the last block's softmax is done
      // Row sums are per-thread partials until here: reduce them over the quad of threads that
      // shares each row. Called while the last P V is in flight, so the shuffles cost nothing.
      auto finish_row_sums = [&] {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
          l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
          inv[r] = l[r] > 0.f ? 1.f / l[r] : 0.f;
        }
      };

      auto need_mask = [&](int n) {
        return (n + 1) * BN > Lk || (args.causal && (n + 1) * BN - 1 > m0 + diag);
      };
      auto issue_qk = [&](float (&sacc)[BN / 2], int s) {
        const uint64_t da0 = make_desc_swizzled<PB>(sQ + wg * (64 * PB), 16, Tr::AtomBytes);
        const uint64_t db0 = make_desc_swizzled<PB>(sK + s * Tr::KVBytes, 16, Tr::AtomBytes);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
          const uint64_t da = desc_advance(da0, (kk / KSP) * (BM * PB) + (kk % KSP) * 32);
          const uint64_t db = desc_advance(db0, (kk / KSP) * (BN * PB) + (kk % KSP) * 32);
          wgmma_ss<BN, Bf16>(sacc, da, db, kk > 0 ? 1 : 0);
        }
        wgmma_commit();
      };
      auto issue_pv = [&](const uint32_t (&pk)[BN / 4], int s) {
        const uint64_t db0 = make_desc_swizzled<PB>(sV + s * Tr::KVBytes, BN * PB, Tr::AtomBytes);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < BN / 16; ++kk) {
          const uint64_t db = desc_advance(db0, kk * (16 * PB));
          wgmma_rs<D, Bf16>(o, pk[4 * kk], pk[4 * kk + 1], pk[4 * kk + 2], pk[4 * kk + 3], db);
        }
        wgmma_commit();
      };
      auto softmax = [&](float (&sacc)[BN / 2], float (&rs)[2], int n) {
        if (need_mask(n))
          softmax_block<BN, true>(sacc, m, l, rs, n * BN + 2 * t, lim0, lim1, scale_log2);
        else
          softmax_block<BN, false>(sacc, m, l, rs, n * BN + 2 * t, lim0, lim1, scale_log2);
      };
      auto release = [&](uint32_t bar) {
        if (lane == 0) mbar_arrive(bar);
      };
      auto stage = [&](int i) { return (kv_it + i) % Stages; };
      auto phase = [&](int i) { return uint32_t((kv_it + i) / Stages) & 1u; };

      if (n_end > 0) {
        mbar_wait(q_full, q_it & 1);
        if constexpr (Variant == 0) {
          for (int i = 0; i < n_end; ++i) {
            const int n = n_end - 1 - i;
            const int s = stage(i);
            const uint32_t ph = phase(i);
            float sacc[BN / 2];
            mbar_wait(k_full(s), ph);
            issue_qk(sacc, s);
            wgmma_wait<0>();
            fence_regs(sacc);
            release(k_empty(s));
            if (i == n_end - 1) release(q_empty);
            uint32_t pk[BN / 4];
            float rs[2];
            softmax(sacc, rs, n);
            pack_p<BN, Bf16>(sacc, pk);
            rescale_o<D>(o, rs);
            mbar_wait(v_full(s), ph);
            issue_pv(pk, s);
            wgmma_wait<0>();
            fence_regs(o);
            fence_regs(pk);
            release(v_empty(s));
          }
        } else {
          uint32_t pk[BN / 4];
          {
            float sacc[BN / 2];
            float rs[2];
            const int s = stage(0);
            mbar_wait(k_full(s), phase(0));
            if (kPingPong) named_sync(my_bar, 256);
            issue_qk(sacc, s);
            if (kPingPong) named_arrive(other_bar, 256);
            wgmma_wait<0>();
            fence_regs(sacc);
            release(k_empty(s));
            softmax(sacc, rs, n_end - 1);
            pack_p<BN, Bf16>(sacc, pk);
          }
          for (int i = 1; i < n_end; ++i) {
            const int n = n_end - 1 - i;
            const int s = stage(i), sp = stage(i - 1);
            float sacc[BN / 2];
            mbar_wait(k_full(s), phase(i));
            mbar_wait(v_full(sp), phase(i - 1));
            if (kPingPong) named_sync(my_bar, 256);
            issue_qk(sacc, s);
            issue_pv(pk, sp);
            if (kPingPong) named_arrive(other_bar, 256);
            wgmma_wait<1>();  // Q K^T of this block done; P V of the last may still run
            fence_regs(sacc);
            release(k_empty(s));
            float rs[2];
            softmax(sacc, rs, n);  // fp32 only: converting P here would serialize the wgmmas
            wgmma_wait<0>();
            fence_regs(o);
            fence_regs(pk);
            release(v_empty(sp));
            rescale_o<D>(o, rs);
            pack_p<BN, Bf16>(sacc, pk);
          }
          {
            release(q_empty);  // every Q K^T of this tile has completed
            const int sp = stage(n_end - 1);
            mbar_wait(v_full(sp), phase(n_end - 1));
            if (kPingPong) named_sync(my_bar, 256);
            issue_pv(pk, sp);
            if (kPingPong) named_arrive(other_bar, 256);
            finish_row_sums();
            wgmma_wait<0>();
            fence_regs(o);
            fence_regs(pk);
            release(v_empty(sp));
          }
        }
        kv_it += n_end;
        ++q_it;
      }

      // ---------------- epilogue ----------------
      if (Variant == 0 || n_end == 0) finish_row_sums();  // else done under the last P V
      const bool staged = Tr::StageO && args.o_tma;
      if (staged) {
        // This warpgroup's 64 rows go to its rows of the staging buffer in TMA's swizzled panel
        // layout (conflict-free: the 8 rows of one store land in 8 different 16-byte chunks),
        // then one thread stores them; after the last round the warpgroup starts its next tile.
        constexpr int PPR = Tr::OPanelsPerRound;
        const int bar = 3 + wg;  // 1 and 2 are the ping-pong barriers
#pragma unroll
        for (int round = 0; round < Tr::ORounds; ++round) {
          if (tid == 0) bulk_wait_read();  // the buffer's last store has read it
          named_sync(bar, 128);
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            const int row = wg * 64 + warp * 16 + g + 8 * r;  // row inside the CTA's tile
#pragma unroll
            for (int slot = 0; slot < PPR; ++slot) {
              const int panel = round * PPR + slot;
              if (panel >= Tr::Panels) break;
#pragma unroll
              for (int c = 0; c < PC / 8; ++c) {
                const int j = panel * (PC / 8) + c;  // 8-column group of the accumulators
                const uint32_t offset = swizzled_offset<PB>(row * PB + c * 16 + 4 * t);
                const uint32_t v =
                    pack2<Bf16>(o[4 * j + 2 * r] * inv[r], o[4 * j + 2 * r + 1] * inv[r]);
                st_shared_u32(sO + slot * Tr::OPanelBytes + offset, v);
              }
            }
          }
          fence_proxy_async_shared();
          named_sync(bar, 128);
          if (tid == 0) {
#pragma unroll
            for (int slot = 0; slot < PPR; ++slot) {
              const int panel = round * PPR + slot;
              if (panel >= Tr::Panels) break;
              tma_store_4d(&tm_o, sO + slot * Tr::OPanelBytes + wg * (64 * PB), panel * PC,
                           m0 + wg * 64, tl.head, tl.batch);
            }
            bulk_commit();
          }
        }
      }
      using Elem = uint16_t;
      Elem* out = static_cast<Elem*>(args.out) + tl.batch * args.o_stride[0] +
                  tl.head * args.o_stride[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int row = row0 + 8 * r;
        if (row < Lq) {
          if (!staged) {
            Elem* orow = out + int64_t(row) * args.o_stride[1] + 2 * t;
#pragma unroll
            for (int j = 0; j < D / 8; ++j) {
              const uint32_t v =
                  pack2<Bf16>(o[4 * j + 2 * r] * inv[r], o[4 * j + 2 * r + 1] * inv[r]);
              *reinterpret_cast<uint32_t*>(orow + 8 * j) = v;
            }
          }
          if (args.lse != nullptr && t == 0) {
            const float lse =
                l[r] > 0.f ? (m[r] + __log2f(l[r])) * 0.69314718055994530942f : kNegInf;
            args.lse[(int64_t(tl.batch) * args.heads_q + tl.head) * Lq + row] = lse;
          }
        }
      }
    }
    if (Tr::StageO && args.o_tma && tid == 0) bulk_wait();  // shared memory must outlive the stores
    if (kPingPong && wg == 0) named_sync(1, 256);  // take warpgroup 1's last arrival
  }
#endif
}

// Launches one instantiation; the caller has built the tensor maps with this kernel's box shapes
// (PanelCols x 128 rows for Q, PanelCols x BN rows for K and V, PanelCols x 64 rows for O when
// the output is staged) and swizzle.
template <int D, int BN, int Stages, int Variant, bool Bf16>
cudaError_t launch_fa3(const CUtensorMap& tq, const CUtensorMap& tk, const CUtensorMap& tv,
                       const CUtensorMap& to, const Fa3Args& args, int grid, cudaStream_t stream) {
  using Tr = Fa3Traits<D, BN, Stages, Variant>;
  auto kernel = fa3_fwd_kernel<D, BN, Stages, Variant, Bf16>;
  cudaError_t err =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Tr::SmemBytes);
  if (err != cudaSuccess) return err;
  kernel<<<grid, Tr::Threads, Tr::SmemBytes, stream>>>(tq, tk, tv, to, args);
  return cudaGetLastError();
}

}  // namespace pfa::kernels::sm90

// Dispatch and scheduling: checks the params, picks the instruction-set path, packs key/value
// blocks once per call (shared by every query tile and every query head of a GQA group), then
// runs the query tiles in parallel. Compiled for baseline x86-64: nothing here needs wide vectors.
#include <pfa/kernels/cpu/flash_attention.h>

#include "cpu_features.h"
#include "tile_plan.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

namespace pfa::kernels::cpu {

namespace {

const KernelOps* ops_for(Isa isa) {
  switch (isa) {
    case Isa::scalar: return &kScalarOps;
    case Isa::avx2: return &kAvx2Ops;
    case Isa::avx512: return &kAvx512Ops;
    case Isa::avx512_bf16: return &kAvx512Bf16Ops;
    case Isa::amx: return &kAmxOps;
  }
  return nullptr;
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<void, FreeDeleter>;

Buffer aligned_buffer(size_t bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  if (p == nullptr) throw std::bad_alloc();
  return Buffer(p);
}

// One thread's scratch, sized for the largest tile any call makes.
struct ThreadScratch {
  Buffer storage;
  Scratch view;
  ThreadScratch() {
    constexpr size_t kTile = kMaxTileRows * kMaxHeadDim;
    constexpr size_t kScores = kMaxTileRows * kBlockKeys;
    const size_t floats = 2 * kTile + kScores + 3 * kMaxTileRows + 16 * kMaxTileRows;
    const size_t halves = kTile + kScores;
    storage = aligned_buffer(floats * sizeof(float) + halves * sizeof(uint16_t) + 6 * 64);
    char* p = static_cast<char*>(storage.get());
    auto take = [&p](size_t bytes) {
      char* r = p;
      p += (bytes + 63) / 64 * 64;
      return r;
    };
    view.q = reinterpret_cast<float*>(take(kTile * sizeof(float)));
    view.o = reinterpret_cast<float*>(take(kTile * sizeof(float)));
    view.s = reinterpret_cast<float*>(take(kScores * sizeof(float)));
    view.m = reinterpret_cast<float*>(take(3 * kMaxTileRows * sizeof(float)));
    view.l = view.m + kMaxTileRows;
    view.alpha = view.l + kMaxTileRows;
    view.lv = reinterpret_cast<float*>(take(16 * kMaxTileRows * sizeof(float)));
    view.q16 = reinterpret_cast<uint16_t*>(take(kTile * sizeof(uint16_t)));
    view.p16 = reinterpret_cast<uint16_t*>(take(kScores * sizeof(uint16_t)));
  }
};

// This thread's scratch, shared by the tiled and the one-pass paths. Per thread and kept across
// calls: the workers live as long as the process.
Scratch& thread_scratch() {
  thread_local ThreadScratch scratch;
  return scratch.view;
}

// One key/value block packed for the decode path (K transposed, and V; fp32), kept per thread.
struct DecodeBlock {
  static constexpr size_t kFloats = kMaxHeadDim * kBlockKeys;
  Buffer storage = aligned_buffer(2 * kFloats * sizeof(float));
  float* kt = static_cast<float*>(storage.get());
  float* vb = kt + kFloats;
};

// Packed K/V storage kept by each calling thread between calls, so short calls don't pay for
// mapping and faulting fresh pages every time. `busy` guards the case of a call nested inside
// another on the same thread (a oneTBB thread waiting in one call can pick up a user task that
// makes another call): that inner call allocates its own.
struct PackCache {
  Buffer k, v;
  size_t capacity = 0;
  bool busy = false;
};
constexpr size_t kMaxCachedPackBytes = size_t{256} << 20;

class PackLease {
 public:
  explicit PackLease(size_t bytes) {
    thread_local PackCache cache;
    if (!cache.busy && bytes <= kMaxCachedPackBytes) {
      if (cache.capacity < bytes) {
        cache.k.reset();
        cache.v.reset();
        cache.capacity = 0;
        cache.k = aligned_buffer(bytes);
        cache.v = aligned_buffer(bytes);
        cache.capacity = bytes;
      }
      cache.busy = true;
      cache_ = &cache;
      k_ = cache.k.get();
      v_ = cache.v.get();
    } else {
      own_k_ = aligned_buffer(bytes);
      own_v_ = aligned_buffer(bytes);
      k_ = own_k_.get();
      v_ = own_v_.get();
    }
  }
  ~PackLease() {
    if (cache_ != nullptr) cache_->busy = false;
  }
  PackLease(const PackLease&) = delete;
  PackLease& operator=(const PackLease&) = delete;
  void* k() const { return k_; }
  void* v() const { return v_; }

 private:
  PackCache* cache_ = nullptr;
  Buffer own_k_, own_v_;
  void* k_ = nullptr;
  void* v_ = nullptr;
};

void check(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(std::string("flash_attention: ") + what);
}

void validate(const AttentionParams& p) {
  check(p.q && p.k && p.v && p.out, "q, k, v and out must be non-null");
  check(p.batch >= 1 && p.heads_q >= 1 && p.heads_kv >= 1 && p.seqlen_q >= 1 && p.seqlen_k >= 1,
        "batch, heads and sequence lengths must be at least 1");
  check(p.heads_q % p.heads_kv == 0, "heads_q must be a multiple of heads_kv");
  check(p.head_dim >= 1 && p.head_dim <= kMaxHeadDim, "head_dim must be in 1..256");
  check(p.dtype == DType::fp32 || p.dtype == DType::fp16 || p.dtype == DType::bf16,
        "dtype must be fp32, fp16 or bf16");
  check(std::isfinite(p.softmax_scale), "softmax_scale must be finite");
}

// Rows per query tile: the largest (up to 64) that still gives every thread several tiles, so two
// cores stay busy on one head with a short sequence.
int64_t choose_tile_rows(const AttentionParams& p, int64_t row_align) {
  const int64_t threads = tbb::this_task_arena::max_concurrency();
  int64_t rows = kMaxTileRows;
  auto tiles = [&](int64_t r) { return p.batch * p.heads_q * ((p.seqlen_q + r - 1) / r); };
  while (rows > 16 && rows > row_align && tiles(rows) < 4 * threads) rows /= 2;
  return rows;
}

}  // namespace

const char* isa_name(Isa isa) noexcept {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::avx512_bf16: return "avx512_bf16";
    case Isa::amx: return "amx";
  }
  return "unknown";
}

bool isa_available(Isa isa) noexcept {
  if (ops_for(isa) == nullptr) return false;
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return f.avx2_fma;
    case Isa::avx512: return f.avx512;
    case Isa::avx512_bf16: return f.avx512_bf16;
    case Isa::amx: return f.amx_bf16;
  }
  return false;
}

Isa resolve_isa(Isa requested, DType dtype) noexcept {
  Isa isa = requested;
  if (dtype != DType::bf16 && (isa == Isa::avx512_bf16 || isa == Isa::amx)) isa = Isa::avx512;
  // Step down to the nearest path this CPU has.
  while (isa != Isa::scalar && !isa_available(isa)) isa = static_cast<Isa>(static_cast<int>(isa) - 1);
  return isa;
}

// AMX first for bf16. Without AMX, widening bf16 to fp32 for the AVX-512 FMAs beats vdpbf16ps on
// the Xeon this was measured on (bench/cpu/NOTES.md): vdpbf16ps issues at half the FMA rate
// there, so its doubled work per instruction buys nothing and the packing costs more.
Isa best_isa(DType dtype) noexcept {
  if (dtype == DType::bf16 && isa_available(Isa::amx)) return Isa::amx;
  return resolve_isa(Isa::avx512, dtype);
}

Isa flash_attention(const AttentionParams& params) {
  Isa isa = best_isa(params.dtype);
  // AMX computes query rows in pairs of 16-row tiles: a decode step (a few query rows) would do
  // 32 rows of work for one. The AVX-512 path's micro-kernels take any row count.
  if (isa == Isa::amx && params.seqlen_q <= 8) isa = resolve_isa(Isa::avx512, params.dtype);
  return flash_attention(params, isa);
}

Isa flash_attention(const AttentionParams& params, Isa requested) {
  validate(params);
  if (!isa_available(requested)) {
    throw std::invalid_argument(std::string("flash_attention: this CPU cannot run the ") +
                                isa_name(requested) + " path");
  }
  const Isa isa = resolve_isa(requested, params.dtype);
  const KernelOps& ops = *ops_for(isa);

  Plan plan;
  plan.p = params;
  plan.group = params.heads_q / params.heads_kv;
  plan.dp = (params.head_dim + ops.dim_align - 1) / ops.dim_align * ops.dim_align;
  plan.tile_rows = choose_tile_rows(params, ops.row_align);
  plan.n_qtiles = (params.seqlen_q + plan.tile_rows - 1) / plan.tile_rows;
  plan.n_kblocks = (params.seqlen_k + kBlockKeys - 1) / kBlockKeys;
  plan.block_elems = plan.dp * kBlockKeys;
  plan.q_scale = params.softmax_scale * 1.44269504088896340736f;  // log2(e)

  // Few query rows: every query row of the heads sharing one key/value head fits one pass over
  // K/V, which skips packing all of K/V beforehand. Decode steps always; short prefills too when
  // there are enough key/value heads to keep every thread busy.
  const int64_t one_pass_rows = plan.group * params.seqlen_q;
  const bool few_rows =
      params.seqlen_q <= 8 ||
      (params.seqlen_q <= 32 &&
       params.batch * params.heads_kv >= 2 * tbb::this_task_arena::max_concurrency());
  if (ops.run_decode != nullptr && few_rows && one_pass_rows <= kMaxTileRows) {
    plan.tile_rows = plan.group * params.seqlen_q;
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, params.batch * params.heads_kv, 1),
                      [&](const tbb::blocked_range<int64_t>& range) {
                        thread_local DecodeBlock block;
                        Scratch& sc = thread_scratch();
                        for (int64_t i = range.begin(); i < range.end(); ++i) {
                          ops.run_decode(plan, i / params.heads_kv, i % params.heads_kv, sc,
                                         block.kt, block.vb);
                        }
                      },
                      tbb::simple_partitioner());
    return isa;
  }

  const int64_t n_blocks = params.batch * params.heads_kv * plan.n_kblocks;
  const size_t pack_bytes = static_cast<size_t>(n_blocks * plan.block_elems) * ops.pack_elem_size;
  const PackLease pack(pack_bytes);
  plan.kpack = pack.k();
  plan.vpack = pack.v();

  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n_blocks, 4),
                    [&](const tbb::blocked_range<int64_t>& range) {
                      for (int64_t i = range.begin(); i < range.end(); ++i) {
                        const int64_t kb = i % plan.n_kblocks;
                        const int64_t bh = i / plan.n_kblocks;
                        ops.pack_block(plan, bh / params.heads_kv, bh % params.heads_kv, kb);
                      }
                    });

  // Tiles of one head are adjacent so both cores stream the same packed K/V through L3; the
  // simple partitioner with grain 1 lets idle threads steal the long causal tiles.
  const int64_t n_tiles = params.batch * params.heads_q * plan.n_qtiles;
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, n_tiles, 1),
      [&](const tbb::blocked_range<int64_t>& range) {
        Scratch& sc = thread_scratch();
        for (int64_t i = range.begin(); i < range.end(); ++i) {
          // Longest causal tiles (the last query rows) first.
          const int64_t qt = plan.n_qtiles - 1 - i % plan.n_qtiles;
          const int64_t bh = i / plan.n_qtiles;
          ops.run_tile(plan, bh / params.heads_q, bh % params.heads_q, qt, sc);
        }
      },
      tbb::simple_partitioner());
  return isa;
}

}  // namespace pfa::kernels::cpu

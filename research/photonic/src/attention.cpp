#include "pfa/photonic/attention.h"

#include "detect_row.h"
#include "numeric.h"

#include <tbb/blocked_range.h>
#include <tbb/combinable.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <immintrin.h>

// GCC 12 warns about the undefined pass-through operands inside its own AVX-512 intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace pfa::photonic {

namespace {

using detail::load;
using detail::store;
using kernels::AttentionParams;

// Keys query row i may see (bottom-right causal alignment): [0, key_end).
int64_t key_end(const AttentionParams& p, int64_t i) {
  if (!p.causal) return p.seqlen_k;
  return std::clamp<int64_t>(i + p.seqlen_k - p.seqlen_q + 1, 0, p.seqlen_k);
}

void load_row(const void* base, kernels::DType dtype, int64_t offset, int64_t n, float* out) {
  for (int64_t x = 0; x < n; ++x) out[x] = load(base, dtype, offset + x);
}

int64_t q_offset(const AttentionParams& p, int64_t b, int64_t i, int64_t h) {
  return b * p.q_stride[0] + i * p.q_stride[1] + h * p.q_stride[2];
}
int64_t k_offset(const AttentionParams& p, int64_t b, int64_t j, int64_t g) {
  return b * p.k_stride[0] + j * p.k_stride[1] + g * p.k_stride[2];
}
int64_t v_offset(const AttentionParams& p, int64_t b, int64_t j, int64_t g) {
  return b * p.v_stride[0] + j * p.v_stride[1] + g * p.v_stride[2];
}
int64_t o_offset(const AttentionParams& p, int64_t b, int64_t i, int64_t h) {
  return b * p.o_stride[0] + i * p.o_stride[1] + h * p.o_stride[2];
}

// exp(s - m) in place over 16 scores at a time and their sum: a degree-6 polynomial on
// [-ln2/2, ln2/2] times 2^k (within 3 ulp of expf; the probabilities then go through the DAC).
__attribute__((target("avx512f,avx512dq,avx512vl,fma")))
float exp_shifted_avx512(float* s, int64_t n, float m) {
  const __m512 mv = _mm512_set1_ps(m), log2e = _mm512_set1_ps(1.44269504088896341f);
  const __m512 ln2_hi = _mm512_set1_ps(0.693359375f), ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
  const __m512 lowest = _mm512_set1_ps(-104.0f);  // exp underflows to 0 below
  const __m512 c6 = _mm512_set1_ps(1.0f / 720), c5 = _mm512_set1_ps(1.0f / 120),
               c4 = _mm512_set1_ps(1.0f / 24), c3 = _mm512_set1_ps(1.0f / 6),
               c2 = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 mask = n - j >= 16 ? static_cast<__mmask16>(0xffff)
                                       : static_cast<__mmask16>((1u << (n - j)) - 1);
    const __m512 x = _mm512_max_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, s + j), mv), lowest);
    const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 r = _mm512_fnmadd_ps(k, ln2_lo, _mm512_fnmadd_ps(k, ln2_hi, x));
    __m512 p = _mm512_fmadd_ps(c6, r, c5);
    p = _mm512_fmadd_ps(p, r, c4);
    p = _mm512_fmadd_ps(p, r, c3);
    p = _mm512_fmadd_ps(p, r, c2);
    p = _mm512_fmadd_ps(p, r, one);
    p = _mm512_fmadd_ps(p, r, one);
    const __m512 e = _mm512_scalef_ps(p, k);
    _mm512_mask_storeu_ps(s + j, mask, e);
    sum = _mm512_mask_add_ps(sum, mask, sum, e);
  }
  return _mm512_reduce_add_ps(sum);
}

// The largest of n scores (NaN scores are skipped, as std::max(m, s) skips them).
__attribute__((target("avx512f"))) float max_avx512(const float* s, int64_t n) {
  const __m512 lowest = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 m = lowest;
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 mask = n - j >= 16 ? static_cast<__mmask16>(0xffff)
                                       : static_cast<__mmask16>((1u << (n - j)) - 1);
    m = _mm512_max_ps(_mm512_mask_loadu_ps(lowest, mask, s + j), m);  // m where a score is NaN
  }
  return _mm512_reduce_max_ps(m);
}

bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
}

// Softmax numerators exp(s - max) in place over n scores; returns (max, sum).
std::pair<float, float> softmax_numerators(float* s, int64_t n) {
  static const bool avx512 = cpu_has_avx512();
  if (avx512) {
    const float m = max_avx512(s, n);
    return {m, exp_shifted_avx512(s, n, m)};
  }
  // The maximum over 16 interleaved partial maxima (the same value for scores without NaN; a
  // single running maximum is one dependent compare per score).
  float part[16];
  for (float& p : part) p = -std::numeric_limits<float>::infinity();
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int x = 0; x < 16; ++x) part[x] = std::max(part[x], s[j + x]);
  float m = -std::numeric_limits<float>::infinity();
  for (; j < n; ++j) m = std::max(m, s[j]);
  for (float p : part) m = std::max(m, p);
  float l = 0;
  for (j = 0; j < n; ++j) {
    s[j] = std::exp(s[j] - m);
    l += s[j];
  }
  return {m, l};
}

// Scores q . k_j * softmax_scale of keys j < end of kv head g in batch b, in fp32. Four keys at
// a time: each sum is still one chain in the order of x (the same bits), four chains overlap.
// fp32 keys are read in place.
void exact_scores(const AttentionParams& p, int64_t b, int64_t g, const float* q, int64_t end,
                  float* s) {
  const int64_t d = p.head_dim;
  std::vector<float> kf(static_cast<size_t>(4 * d));
  auto key = [&](int64_t j, int u) -> const float* {
    const int64_t at = k_offset(p, b, j, g);
    if (p.dtype == kernels::DType::fp32) return static_cast<const float*>(p.k) + at;
    load_row(p.k, p.dtype, at, d, kf.data() + u * d);
    return kf.data() + u * d;
  };
  int64_t j = 0;
  for (; j + 4 <= end; j += 4) {
    const float* k[4] = {key(j, 0), key(j + 1, 1), key(j + 2, 2), key(j + 3, 3)};
    float acc[4] = {0, 0, 0, 0};
    for (int64_t x = 0; x < d; ++x)
      for (int u = 0; u < 4; ++u) acc[u] += q[x] * k[u][x];
    for (int u = 0; u < 4; ++u) s[j + u] = acc[u] * p.softmax_scale;
  }
  for (; j < end; ++j) {
    const float* k = key(j, 0);
    float acc = 0;
    for (int64_t x = 0; x < d; ++x) acc += q[x] * k[x];
    s[j] = acc * p.softmax_scale;
  }
}

// Accumulates a pilot sample of analog detector values for the ADC range.
struct Pilot {
  double sum2 = 0, peak = 0;
  int64_t count = 0;
  void add(double y) {
    sum2 += y * y;
    peak = std::max(peak, std::abs(y));
    ++count;
  }
  AdcRange range(const SignalChain& chain, double sigmas) const {
    if (sigmas <= 0 || count == 0) return make_adc_range(chain.physical_full_scale(), chain.adc_bits());
    const double s = chain.sigma();
    const double rms = std::sqrt(sum2 / count + s * s);
    double fs = std::max(sigmas * rms, peak);
    if (!(fs > 0)) fs = chain.physical_full_scale();
    return make_adc_range(std::min(fs, chain.physical_full_scale()), chain.adc_bits());
  }
};

// Encodes `rows` B-side operand rows of n values straight into the row kernel's tiles, 16 rows
// and up to 32 chunks at a time (chunks encode independently), so every buffer stays small.
// load(first, count, begin, end, raw) writes elements [begin, end) of rows first .. first +
// count - 1 to raw, row after row.
template <class Load>
detail::TransposedB encode_tiles(const SignalChain& chain, int64_t rows, int64_t n,
                                 const Load& load) {
  const int L = chain.wavelengths(), H = chain.height();
  const int64_t chunks = chain.chunks(n);
  constexpr int64_t kChunks = 32;
  detail::TransposedB t(rows, chunks, L);
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, t.ld / 16), [&](const auto& range) {
    std::vector<float> raw(static_cast<size_t>(16 * kChunks * L));
    std::vector<float> optical(raw.size()), scales(static_cast<size_t>(16 * kChunks));
    for (int64_t tile = range.begin(); tile < range.end(); ++tile) {
      const int64_t first = tile * 16, count = std::min<int64_t>(16, rows - first);
      for (int64_t c0 = 0; c0 < chunks; c0 += kChunks) {
        const int64_t cs = std::min(kChunks, chunks - c0);
        const int64_t begin = c0 * L, len = std::min(n, (c0 + cs) * L) - begin;
        load(first, count, begin, begin + len, raw.data());
        for (int64_t r = 0; r < count; ++r) {
          chain.encode(raw.data() + r * len, len, 1, static_cast<int>((first + r) % H), Side::b,
                       false, optical.data() + r * cs * L, scales.data() + r * cs);
        }
        float* to = t.optical.data() + t.at(first, c0, 0);
        for (int64_t i = 0; i < cs * L; ++i)
          for (int64_t r = 0; r < count; ++r) to[i * 16 + r] = optical[r * cs * L + i];
        float* ts = t.scales.data() + t.scale_at(first, c0);
        for (int64_t c = 0; c < cs; ++c)
          for (int64_t r = 0; r < count; ++r) ts[c * 16 + r] = scales[r * cs + c];
      }
    }
  });
  return t;
}

// Node constants of lane w for B vectors 0..n-1 (vector n sits on node (w, n % H)).
detail::LaneNodes lane_nodes(const SignalChain& chain, int w, int64_t n) {
  detail::LaneNodes l;
  const int H = chain.height();
  const float inv_lambda = 1.0f / static_cast<float>(chain.wavelengths());
  const auto& s = chain.state();
  const auto& c = chain.corrections();
  l.gain.resize(n);
  l.offset.resize(n);
  l.out_offset.resize(n);
  l.out_gain.resize(n);
  for (int64_t j = 0; j < n; ++j) {
    const int node = w * H + static_cast<int>(j % H);
    l.gain[j] = s.node_gain[node] * inv_lambda;
    l.offset[j] = s.node_offset[node];
    l.out_offset[j] = c.output_offset[node];
    l.out_gain[j] = c.output_gain[node];
  }
  return l;
}

// Noise-free detector values of chunks c_begin, c_begin + c_step, ... < c_end of A against
// vector n of B, appended to `out` (node constants and addresses worked out once per vector).
void analog_values(const SignalChain& chain, const float* a, const detail::TransposedB& b,
                   int64_t n, int64_t c_begin, int64_t c_end, int64_t c_step, int w,
                   std::vector<float>& out) {
  const int L = chain.wavelengths();
  const int node = w * chain.height() + static_cast<int>(n % chain.height());
  const float gain = chain.state().node_gain[node], offset = chain.state().node_offset[node];
  const float* bn = b.optical.data() + b.at(n, 0, 0);
  for (int64_t c = c_begin; c < c_end; c += c_step) {
    const float* bc = bn + c * L * 16;
    float dot = 0;
    for (int k = 0; k < L; ++k) dot += a[c * L + k] * bc[k * 16];
    out.push_back(gain * dot / static_cast<float>(L) + offset);
  }
}

}  // namespace

AttentionShape shape_of(const AttentionParams& p) {
  AttentionShape s;
  s.batch = p.batch;
  s.heads_q = p.heads_q;
  s.heads_kv = p.heads_kv;
  s.seqlen_q = p.seqlen_q;
  s.seqlen_k = p.seqlen_k;
  s.head_dim = p.head_dim;
  s.causal = p.causal;
  s.bytes_per_element = p.dtype == kernels::DType::fp32 ? 4 : 2;
  return s;
}

PhotonicRunStats photonic_attention(const SimulatedDevice& device, const AttentionParams& p,
                                    uint64_t call_id) {
  PhotonicRunStats stats;
  const SignalChain chain(device, call_id);
  const int L = chain.wavelengths();
  const int W = chain.width();
  const int64_t d = p.head_dim, Lq = p.seqlen_q, Lk = p.seqlen_k;
  const int64_t group = p.heads_q / p.heads_kv;
  const int64_t chunks_d = chain.chunks(d), chunks_k = chain.chunks(Lk);

  // K rows and V columns are operands of side B: encode each (batch, kv head) once.
  const int64_t kv_heads = p.batch * p.heads_kv;
  std::vector<detail::TransposedB> keys(kv_heads), values(kv_heads);
  tbb::parallel_for(int64_t{0}, kv_heads, [&](int64_t bg) {
    const int64_t b = bg / p.heads_kv, g = bg % p.heads_kv;
    keys[bg] = encode_tiles(chain, Lk, d, [&](int64_t first, int64_t count, int64_t begin,
                                              int64_t end, float* raw) {
      for (int64_t u = 0; u < count; ++u)
        load_row(p.k, p.dtype, k_offset(p, b, first + u, g) + begin, end - begin,
                 raw + u * (end - begin));
    });
    values[bg] = encode_tiles(chain, d, Lk, [&](int64_t first, int64_t count, int64_t begin,
                                                int64_t end, float* raw) {  // V columns
      float v[16];
      for (int64_t j = begin; j < end; ++j) {
        load_row(p.v, p.dtype, v_offset(p, b, j, g) + first, count, v);
        for (int64_t u = 0; u < count; ++u) raw[u * (end - begin) + j - begin] = v[u];
      }
    });
  });
  // Node constants of every A lane, expanded over keys (Q . K^T) and value columns (P . V).
  std::vector<detail::LaneNodes> lanes_qk(W), lanes_pv(W);
  for (int w = 0; w < W; ++w) {
    lanes_qk[w] = lane_nodes(chain, w, Lk);
    lanes_pv[w] = lane_nodes(chain, w, d);
  }

  const int64_t rows = p.batch * p.heads_q * Lq;
  auto split = [&](int64_t r, int64_t& b, int64_t& h, int64_t& i) {
    i = r % Lq;
    h = (r / Lq) % p.heads_q;
    b = r / (Lq * p.heads_q);
  };

  // ADC full scales from a pilot: a few rows through both products, noise-free. The rows run in
  // parallel (serial, this was ~5 % of the call on two threads); their values are added in row
  // order, so the full scales do not depend on scheduling.
  Pilot pilot_qk, pilot_pv;
  if (device.config().adc_range_sigmas > 0) {
    const int64_t samples = std::min<int64_t>(rows, 8);
    std::vector<std::vector<float>> sampled_qk(samples), sampled_pv(samples);
    tbb::parallel_for(int64_t{0}, samples, [&](int64_t n) {
      int64_t b, h, i;
      split(n * rows / samples, b, h, i);
      const int64_t end = key_end(p, i);
      if (end == 0) return;
      const int64_t bg = b * p.heads_kv + h / group;
      const int w = static_cast<int>(i % W);
      std::vector<float> q(d), qe(chunks_d * L), qs(chunks_d), s(end), pe(chunks_k * L),
          ps(chunks_k);
      load_row(p.q, p.dtype, q_offset(p, b, i, h), d, q.data());
      chain.encode(q.data(), d, 1, w, Side::a, false, qe.data(), qs.data());
      const int64_t kstep = std::max<int64_t>(1, end / 64);
      for (int64_t j = 0; j < end; j += kstep)
        analog_values(chain, qe.data(), keys[bg], j, 0, chunks_d, 1, w, sampled_qk[n]);
      // Exact fp32 scores of this row give the probabilities the P . V pilot needs.
      exact_scores(p, b, h / group, q.data(), end, s.data());
      softmax_numerators(s.data(), end);
      chain.encode(s.data(), end, 1, w, Side::a, true, pe.data(), ps.data());
      const int64_t chunks = chain.chunks(end);
      const int64_t cstep = std::max<int64_t>(1, chunks / 64);
      for (int64_t x = 0; x < d; ++x)
        analog_values(chain, pe.data(), values[bg], x, 0, chunks, cstep, w, sampled_pv[n]);
    });
    for (int64_t n = 0; n < samples; ++n) {
      for (float y : sampled_qk[n]) pilot_qk.add(y);
      for (float y : sampled_pv[n]) pilot_pv.add(y);
    }
  }
  const double sigmas = device.config().adc_range_sigmas;
  const AdcRange adc_qk = pilot_qk.range(chain, sigmas);
  const AdcRange adc_pv = pilot_pv.range(chain, sigmas);
  stats.qk_full_scale = adc_qk.full_scale;
  stats.pv_full_scale = adc_pv.full_scale;

  tbb::combinable<int64_t> clipped_sum([] { return int64_t{0}; });
  tbb::combinable<int64_t> detections_sum([] { return int64_t{0}; });
  // Rows are processed in blocks of up to kMaxRows that share a lane (i, i + W, ...: same node
  // constants, same key/value operands), so each B operand is read once per block.
  const float sigma = chain.sigma();
  constexpr int R = detail::kMaxRows;
  const int64_t span = static_cast<int64_t>(W) * R;          // query rows covered by W blocks
  const int64_t spans = (Lq + span - 1) / span;
  const int64_t blocks = p.batch * p.heads_q * spans * W;
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, blocks, 2), [&](const auto& range) {
    std::vector<float> q(d), s(static_cast<size_t>(R) * Lk), qe(R * chunks_d * L), qs(R * chunks_d),
        pe(R * chunks_k * L), ps(R * chunks_k), o(static_cast<size_t>(R) * d);
    int64_t clipped = 0, detections = 0;
    for (int64_t blk = range.begin(); blk < range.end(); ++blk) {
      const int w = static_cast<int>(blk % W);
      const int64_t sp = (blk / W) % spans;
      const int64_t h = (blk / (W * spans)) % p.heads_q;
      const int64_t b = blk / (W * spans * p.heads_q);
      const int64_t bg = b * p.heads_kv + h / group;
      // The block's rows, in increasing order (so their causal key ranges only grow).
      int64_t row_i[R], row_end[R];
      int n_rows = 0;
      for (int t = 0; t < R; ++t) {
        const int64_t i = sp * span + w + static_cast<int64_t>(t) * W;
        if (i >= Lq) break;
        const int64_t end = key_end(p, i);
        if (end == 0) {  // sees no key: zeros and -inf
          const int64_t out = o_offset(p, b, i, h);
          for (int64_t x = 0; x < d; ++x) store(p.out, p.dtype, out + x, 0.0f);
          if (p.lse) p.lse[(b * p.heads_q + h) * Lq + i] = -std::numeric_limits<float>::infinity();
          continue;
        }
        row_i[n_rows] = i;
        row_end[n_rows] = end;
        ++n_rows;
      }
      if (n_rows == 0) continue;
      auto flat = [&](int t) { return static_cast<uint64_t>((b * p.heads_q + h) * Lq + row_i[t]); };

      // Q . K^T on the crossbar, one detection per lambda-chunk, accumulated digitally.
      detail::RowBlock qk;
      qk.rows = n_rows;
      for (int t = 0; t < n_rows; ++t) {
        load_row(p.q, p.dtype, q_offset(p, b, row_i[t], h), d, q.data());
        float* e = qe.data() + t * chunks_d * L;
        float* sc = qs.data() + t * chunks_d;
        chain.encode(q.data(), d, 1, w, Side::a, false, e, sc);
        qk.a[t] = e;
        qk.a_scales[t] = sc;
        qk.noise_key[t] = chain.noise_key(2 * flat(t));
        qk.acc[t] = s.data() + static_cast<size_t>(t) * Lk;
      }
      const detail::RowNoise noise_qk{sigma, static_cast<uint32_t>(chunks_d)};
      // Keys every row sees, together; then each longer row's extra keys on its own.
      detail::detect_rows(qk, keys[bg], {0, chunks_d, 0, row_end[0], true}, lanes_qk[w], noise_qk,
                          adc_qk, clipped);
      for (int t = 1; t < n_rows; ++t) {
        if (row_end[t] == row_end[0]) continue;
        detail::RowBlock one;
        one.rows = 1;
        one.a[0] = qk.a[t];
        one.a_scales[0] = qk.a_scales[t];
        one.noise_key[0] = qk.noise_key[t];
        one.acc[0] = qk.acc[t];
        detail::detect_rows(one, keys[bg], {0, chunks_d, row_end[0], row_end[t], true},
                            lanes_qk[w], noise_qk, adc_qk, clipped);
      }

      // Softmax electronically in fp32, then P . V: unnormalised probabilities (side A) against
      // V columns (side B).
      detail::RowBlock pv;
      pv.rows = n_rows;
      float inv_l[R];
      int64_t row_chunks[R];
      for (int t = 0; t < n_rows; ++t) {
        float* st = qk.acc[t];
        for (int64_t j = 0; j < row_end[t]; ++j) st[j] *= p.softmax_scale;
        detections += row_end[t] * chunks_d;
        const auto [m, l] = softmax_numerators(st, row_end[t]);
        if (p.lse) p.lse[(b * p.heads_q + h) * Lq + row_i[t]] = m + std::log(l);
        inv_l[t] = 1.0f / l;
        float* e = pe.data() + t * chunks_k * L;
        float* sc = ps.data() + t * chunks_k;
        chain.encode(st, row_end[t], 1, w, Side::a, true, e, sc);
        row_chunks[t] = chain.chunks(row_end[t]);
        pv.a[t] = e;
        pv.a_scales[t] = sc;
        pv.noise_key[t] = chain.noise_key(2 * flat(t) + 1);
        pv.acc[t] = o.data() + static_cast<size_t>(t) * d;
        detections += d * row_chunks[t];
      }
      const detail::RowNoise noise_pv{sigma, static_cast<uint32_t>(chunks_k)};
      // Chunks every row has, together; then each longer row's extra chunks on its own.
      detail::detect_rows(pv, values[bg], {0, row_chunks[0], 0, d, true}, lanes_pv[w], noise_pv,
                          adc_pv, clipped);
      for (int t = 1; t < n_rows; ++t) {
        if (row_chunks[t] == row_chunks[0]) continue;
        detail::RowBlock one;
        one.rows = 1;
        one.a[0] = pv.a[t];
        one.a_scales[0] = pv.a_scales[t];
        one.noise_key[0] = pv.noise_key[t];
        one.acc[0] = pv.acc[t];
        detail::detect_rows(one, values[bg], {row_chunks[0], row_chunks[t], 0, d, false},
                            lanes_pv[w], noise_pv, adc_pv, clipped);
      }
      for (int t = 0; t < n_rows; ++t) {
        const int64_t out = o_offset(p, b, row_i[t], h);
        for (int64_t x = 0; x < d; ++x) store(p.out, p.dtype, out + x, pv.acc[t][x] * inv_l[t]);
      }
    }
    clipped_sum.local() += clipped;
    detections_sum.local() += detections;
  });
  stats.clipped = clipped_sum.combine(std::plus<int64_t>());
  stats.detections = detections_sum.combine(std::plus<int64_t>());
  return stats;
}

SampledError sampled_error(const AttentionParams& p, int max_rows) {
  SampledError result;
  const int64_t rows = p.batch * p.heads_q * p.seqlen_q;
  const int64_t d = p.head_dim, group = p.heads_q / p.heads_kv;
  const int64_t samples = std::min<int64_t>(rows, std::max(1, max_rows));
  double diff2 = 0, ref2 = 0;
  std::vector<double> q(d), s(p.seqlen_k), o(d);
  for (int64_t n = 0; n < samples; ++n) {
    const int64_t r = n * rows / samples;
    const int64_t i = r % p.seqlen_q, h = (r / p.seqlen_q) % p.heads_q;
    const int64_t b = r / (p.seqlen_q * p.heads_q), g = h / group;
    const int64_t end = key_end(p, i);
    if (end == 0) continue;
    for (int64_t x = 0; x < d; ++x) q[x] = load(p.q, p.dtype, q_offset(p, b, i, h) + x);
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < end; ++j) {
      double acc = 0;
      for (int64_t x = 0; x < d; ++x) acc += q[x] * load(p.k, p.dtype, k_offset(p, b, j, g) + x);
      s[j] = acc * static_cast<double>(p.softmax_scale);
      m = std::max(m, s[j]);
    }
    double l = 0;
    std::fill(o.begin(), o.end(), 0.0);
    for (int64_t j = 0; j < end; ++j) {
      const double e = std::exp(s[j] - m);
      l += e;
      for (int64_t x = 0; x < d; ++x) o[x] += e * load(p.v, p.dtype, v_offset(p, b, j, g) + x);
    }
    for (int64_t x = 0; x < d; ++x) {
      const double exact = o[x] / l;
      const double got = load(p.out, p.dtype, o_offset(p, b, i, h) + x);
      diff2 += (got - exact) * (got - exact);
      ref2 += exact * exact;
    }
    ++result.rows;
  }
  result.rel_error = ref2 > 0 ? std::sqrt(diff2 / ref2) : 0.0;
  return result;
}

void exact_attention(const AttentionParams& p) {
  const int64_t d = p.head_dim, Lq = p.seqlen_q, Lk = p.seqlen_k;
  const int64_t group = p.heads_q / p.heads_kv;
  const int64_t rows = p.batch * p.heads_q * Lq;
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, rows, 8), [&](const auto& range) {
    std::vector<float> q(d), s(Lk), o(d), kv(d);
    for (int64_t r = range.begin(); r < range.end(); ++r) {
      const int64_t i = r % Lq, h = (r / Lq) % p.heads_q, b = r / (Lq * p.heads_q);
      const int64_t g = h / group, end = key_end(p, i), out = o_offset(p, b, i, h);
      float* lse = p.lse ? p.lse + (b * p.heads_q + h) * Lq + i : nullptr;
      if (end == 0) {
        for (int64_t x = 0; x < d; ++x) store(p.out, p.dtype, out + x, 0.0f);
        if (lse) *lse = -std::numeric_limits<float>::infinity();
        continue;
      }
      load_row(p.q, p.dtype, q_offset(p, b, i, h), d, q.data());
      for (int64_t j = 0; j < end; ++j) {
        load_row(p.k, p.dtype, k_offset(p, b, j, g), d, kv.data());
        float acc = 0;
        for (int64_t x = 0; x < d; ++x) acc += q[x] * kv[x];
        s[j] = acc * p.softmax_scale;
      }
      const auto [m, l] = softmax_numerators(s.data(), end);
      if (lse) *lse = m + std::log(l);
      std::fill(o.begin(), o.end(), 0.0f);
      for (int64_t j = 0; j < end; ++j) {
        load_row(p.v, p.dtype, v_offset(p, b, j, g), d, kv.data());
        for (int64_t x = 0; x < d; ++x) o[x] += s[j] * kv[x];
      }
      for (int64_t x = 0; x < d; ++x) store(p.out, p.dtype, out + x, o[x] / l);
    }
  });
}

}  // namespace pfa::photonic

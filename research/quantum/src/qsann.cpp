#include <pfa/research/qsann.h>
#include <pfa/research/state_vector.h>
#include <pfa/research/tensor_rows.h>

#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

namespace pfa::research {

namespace {

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t circuit_seed(const QsannConfig& c, int64_t head, int role) {
  return mix(c.seed ^ mix(static_cast<uint64_t>(head) * 2 + static_cast<uint64_t>(role)));
}

// The parameterised layers' angles: depth x qubits x (RY, RZ), uniform in [0, 2 pi).
std::vector<float> circuit_angles(const QsannConfig& c, int64_t head, int role) {
  std::mt19937_64 rng(circuit_seed(c, head, role));
  std::uniform_real_distribution<float> angle(0.f, 6.2831853f);
  std::vector<float> a(static_cast<size_t>(c.depth * c.qubits * 2));
  for (auto& x : a) x = angle(rng);
  return a;
}

void ring(StateVector& s) {
  const int n = s.qubits();
  if (n < 2) return;
  for (int w = 0; w < n; ++w) s.cnot(w, (w + 1) % n);
}

// Encodes x, runs the parameterised layers and returns <Z_0>.
double run_circuit(StateVector& s, const float* x, int64_t dim, const std::vector<float>& angles,
                   int depth) {
  const int n = s.qubits();
  s.reset();
  for (int64_t f0 = 0; f0 < dim; f0 += n) {
    for (int w = 0; w < n && f0 + w < dim; ++w) s.ry(w, x[f0 + w]);
    ring(s);
  }
  for (int l = 0; l < depth; ++l) {
    for (int w = 0; w < n; ++w) {
      s.ry(w, angles[(l * n + w) * 2]);
      s.rz(w, angles[(l * n + w) * 2 + 1]);
    }
    ring(s);
  }
  return s.expectation_z(0);
}

// With shots, <Z> is estimated from a binomial count, as a device would measure it.
double measured(double z, const QsannConfig& c, uint64_t token_seed) {
  if (c.shots <= 0) return z;
  std::mt19937_64 rng(token_seed);
  const double p_up = std::clamp(0.5 * (1.0 + z), 0.0, 1.0);
  std::binomial_distribution<int64_t> count(c.shots, p_up);
  return 2.0 * static_cast<double>(count(rng)) / static_cast<double>(c.shots) - 1.0;
}

}  // namespace

double qsann_expectation(const float* x, int64_t dim, const QsannConfig& c, int64_t head,
                         int role) {
  StateVector s(c.qubits);
  return run_circuit(s, x, dim, circuit_angles(c, head, role), c.depth);
}

void qsann_attention(const AttentionParams& p, const QsannConfig& c) {
  if (!p.q || !p.k || !p.v || !p.out) throw std::invalid_argument("qsann: null tensor");
  if (p.batch < 1 || p.heads_q < 1 || p.heads_kv < 1 || p.head_dim < 1 || p.seqlen_q < 1 ||
      p.seqlen_k < 1 || p.heads_q % p.heads_kv != 0) {
    throw std::invalid_argument("qsann: bad sizes");
  }
  if (p.lse) throw std::invalid_argument("qsann: no log-sum-exp (its weights are not exp(q.k))");
  if (c.qubits < 1 || c.qubits > StateVector::kMaxQubits || c.depth < 0) {
    throw std::invalid_argument("qsann: bad qubits or depth");
  }
  const int64_t D = p.head_dim, Lq = p.seqlen_q, Lk = p.seqlen_k;
  const int64_t group = p.heads_q / p.heads_kv;
  const float root = std::sqrt(std::max(p.softmax_scale, 0.0f));

  std::vector<std::vector<float>> q_angles(static_cast<size_t>(p.heads_q)),
      k_angles(static_cast<size_t>(p.heads_kv));
  for (int64_t h = 0; h < p.heads_q; ++h) q_angles[h] = circuit_angles(c, h, 0);
  for (int64_t h = 0; h < p.heads_kv; ++h) k_angles[h] = circuit_angles(c, h, 1);

  // One circuit per token: z for every query and key.
  std::vector<double> zq(static_cast<size_t>(p.batch * p.heads_q * Lq));
  std::vector<double> zk(static_cast<size_t>(p.batch * p.heads_kv * Lk));
  tbb::enumerable_thread_specific<StateVector> states([&] { return StateVector(c.qubits); });
  const int64_t q_tokens = static_cast<int64_t>(zq.size());
  tbb::parallel_for(int64_t{0}, q_tokens + static_cast<int64_t>(zk.size()), [&](int64_t t) {
    StateVector& s = states.local();
    std::vector<float> x(static_cast<size_t>(D));
    const bool query = t < q_tokens;
    const int64_t u = query ? t : t - q_tokens;
    const int64_t heads = query ? p.heads_q : p.heads_kv, L = query ? Lq : Lk;
    const int64_t i = u % L, h = (u / L) % heads, b = u / (L * heads);
    if (query) {
      load_row(row_address(p.q, p.dtype, p.q_stride, b, i, h), p.dtype, D, x.data());
    } else {
      load_row(row_address(p.k, p.dtype, p.k_stride, b, i, h), p.dtype, D, x.data());
    }
    for (auto& v : x) v *= root;
    const double z = run_circuit(s, x.data(), D, query ? q_angles[h] : k_angles[h], c.depth);
    const uint64_t token_seed = mix(c.seed ^ mix(static_cast<uint64_t>(t) + 0x51ab));
    (query ? zq[u] : zk[t - q_tokens]) = measured(z, c, token_seed);
  });

  // Classical aggregation of the values with the Gaussian-projected weights.
  std::vector<float> values(static_cast<size_t>(p.batch * p.heads_kv * Lk * D));
  tbb::parallel_for(int64_t{0}, p.batch * p.heads_kv, [&](int64_t bh) {
    load_head(p.v, p.dtype, p.v_stride, bh / p.heads_kv, bh % p.heads_kv, Lk, D,
              values.data() + bh * Lk * D);
  });
  tbb::parallel_for(int64_t{0}, p.batch * p.heads_q * Lq, [&](int64_t row) {
    const int64_t i = row % Lq, h = (row / Lq) % p.heads_q, b = row / (Lq * p.heads_q);
    const int64_t bhk = b * p.heads_kv + h / group;
    const float* V = values.data() + bhk * Lk * D;
    const double* z = zk.data() + bhk * Lk;
    const double zi = zq[static_cast<size_t>(row)];
    std::vector<float> o(static_cast<size_t>(D), 0.f);
    const int64_t n = visible_keys(p, i);
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      const double diff = zi - z[j];
      const float w = static_cast<float>(std::exp(-diff * diff));
      sum += w;
      for (int64_t d = 0; d < D; ++d) o[d] += w * V[j * D + d];
    }
    if (sum > 0) {
      const float inv = static_cast<float>(1.0 / sum);
      for (auto& x : o) x *= inv;
    }
    store_out_row(p, b, i, h, o.data());
  });
}

void qsann_attention_weights(const AttentionParams& p, const QsannConfig& c, int64_t b,
                             int64_t h, int64_t i, double* weights) {
  const int64_t D = p.head_dim, hk = h / (p.heads_q / p.heads_kv);
  const int64_t n = visible_keys(p, i);
  const float root = std::sqrt(std::max(p.softmax_scale, 0.0f));
  std::vector<float> x(static_cast<size_t>(D));
  load_row(row_address(p.q, p.dtype, p.q_stride, b, i, h), p.dtype, D, x.data());
  for (auto& v : x) v *= root;
  const double zq = qsann_expectation(x.data(), D, c, h, 0);
  StateVector s(c.qubits);
  const auto angles = circuit_angles(c, hk, 1);
  double total = 0;
  for (int64_t j = 0; j < n; ++j) {
    load_row(row_address(p.k, p.dtype, p.k_stride, b, j, hk), p.dtype, D, x.data());
    for (auto& v : x) v *= root;
    const double diff = zq - run_circuit(s, x.data(), D, angles, c.depth);
    total += (weights[j] = std::exp(-diff * diff));
  }
  for (int64_t j = 0; j < n; ++j) weights[j] /= total;
}

// Random inputs measure 0.03 to 0.9 (more when attention is peaked); the output stays a weighted
// mean of the values with weights within a factor e^4 of each other, close to uniform attention.
double qsann_expected_error() { return 1.2; }

}  // namespace pfa::research

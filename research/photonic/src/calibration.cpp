#include "pfa/photonic/calibration.h"

#include "pfa/photonic/attention.h"
#include "pfa/photonic/counter_rng.h"
#include "pfa/photonic/ring_crosstalk.h"
#include "pfa/photonic/signal_chain.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace pfa::photonic {

namespace {

constexpr double kMonitorNoise = 1e-3;  // relative noise of a ring's monitor photodiode reading

double rms_detuning_pm(const SimulatedDevice& device) {
  double sum = 0;
  for (int r = 0; r < device.ring_count(); ++r) {
    const double d = device.ring_detuning_pm(r);
    sum += d * d;
  }
  return std::sqrt(sum / device.ring_count());
}

// Step 1: sweep each ring's heater around its current setting, read the monitor detector, and
// fit a parabola to the points near the transmission peak.
void lock_resonances(SimulatedDevice& device, const CalibrationOptions& options) {
  const DeviceParams& p = device.params();
  const uint64_t key = stream_key(options.seed, 101);
  const double half_span = 4.0 * p.wavelength_offset_sigma_pm + 20.0;
  const double step = options.lock_step_pm;
  const int points = static_cast<int>(2 * half_span / step) + 1;
  const double fit_half_width = p.ring_fwhm_nm * 1e3 / 4.0;
  std::vector<double> tuning = device.ring_tuning_pm();
  std::vector<double> t(points), power(points);
  for (int r = 0; r < device.ring_count(); ++r) {
    const double t0 = tuning[r];
    const double detuning0 = device.ring_detuning_pm(r);  // at heater setting t0
    int best = 0;
    for (int n = 0; n < points; ++n) {
      t[n] = t0 - half_span + n * step;
      const double detuning = detuning0 - (t[n] - t0);
      power[n] = lorentzian(detuning * 1e-3, p.ring_fwhm_nm) +
                 kMonitorNoise * gaussian(key, static_cast<uint64_t>(r) * points + n);
      if (power[n] > power[best]) best = n;
    }
    // Least-squares parabola through the points within a quarter linewidth of the peak.
    double s[5] = {}, sy[3] = {};
    for (int n = 0; n < points; ++n) {
      const double x = t[n] - t[best];
      if (std::abs(x) > fit_half_width) continue;
      double xp = 1;
      for (int e = 0; e < 5; ++e) {
        s[e] += xp;
        if (e < 3) sy[e] += xp * power[n];
        xp *= x;
      }
    }
    // Normal equations for y = c0 + c1 x + c2 x^2 (Cramer's rule).
    const double a[3][3] = {{s[0], s[1], s[2]}, {s[1], s[2], s[3]}, {s[2], s[3], s[4]}};
    auto det3 = [](const double m[3][3]) {
      return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
             m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
             m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    };
    const double det = det3(a);
    double peak = t[best];
    if (std::abs(det) > 0) {
      double m1[3][3], m2[3][3];
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) {
          m1[i][j] = j == 1 ? sy[i] : a[i][j];
          m2[i][j] = j == 2 ? sy[i] : a[i][j];
        }
      }
      const double c1 = det3(m1) / det, c2 = det3(m2) / det;
      if (c2 < 0) peak = t[best] + std::clamp(-c1 / (2 * c2), -fit_half_width, fit_half_width);
    }
    tuning[r] = peak;
  }
  device.set_ring_tuning(std::move(tuning));
}

// Sylvester-Hadamard entry (i, k) of order 2^m: (-1)^popcount(i & k).
float hadamard(int i, int k) { return (__builtin_popcount(i & k) & 1) ? -1.0f : 1.0f; }

// Inverse of a small dense matrix (Gauss-Jordan with partial pivoting).
std::vector<double> invert(std::vector<double> a, int n) {
  std::vector<double> inv(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) inv[i * n + i] = 1.0;
  for (int col = 0; col < n; ++col) {
    int pivot = col;
    for (int r = col + 1; r < n; ++r) {
      if (std::abs(a[r * n + col]) > std::abs(a[pivot * n + col])) pivot = r;
    }
    if (std::abs(a[pivot * n + col]) < 1e-12) throw std::runtime_error("singular crosstalk matrix");
    for (int k = 0; k < n; ++k) {
      std::swap(a[col * n + k], a[pivot * n + k]);
      std::swap(inv[col * n + k], inv[pivot * n + k]);
    }
    const double d = 1.0 / a[col * n + col];
    for (int k = 0; k < n; ++k) {
      a[col * n + k] *= d;
      inv[col * n + k] *= d;
    }
    for (int r = 0; r < n; ++r) {
      if (r == col) continue;
      const double f = a[r * n + col];
      if (f == 0) continue;
      for (int k = 0; k < n; ++k) {
        a[r * n + k] -= f * a[col * n + k];
        inv[r * n + k] -= f * inv[col * n + k];
      }
    }
  }
  return inv;
}

}  // namespace

CalibrationData calibrate(SimulatedDevice& device, const CalibrationOptions& options) {
  const DeviceParams& p = device.params();
  const int W = p.core_width, H = p.core_height, L = p.wavelengths;
  CalibrationData data;
  data.profile = p.name;
  data.device_seed = device.config().device_seed;
  data.width = W;
  data.height = H;
  data.wavelengths = L;
  CalibrationReport& report = data.report;
  report.crosstalk_db_design = to_db(adjacent_crosstalk(p.channel_spacing_nm, p.ring_fwhm_nm));

  report.wavelength_error_pm_before = rms_detuning_pm(device);
  if (options.measure_error) report.rel_error_before = probe_attention_error(device, options.seed);

  // 1. Resonance lock.
  lock_resonances(device, options);
  report.wavelength_error_pm_after = rms_detuning_pm(device);
  report.heater_power_w = device.tuning_power_w();

  // Measurements run with corrections off, read at the monitor resolution over the full range.
  device.clear_corrections();
  const SignalChain chain(device, options.seed);
  const AdcRange adc = make_adc_range(chain.physical_full_scale(), options.monitor_adc_bits);
  const float sigma = chain.sigma();
  const uint64_t key = stream_key(options.seed, 202);
  uint64_t counter = 0;
  auto read = [&](const float* a, const float* b, int w, int h) {
    float y = chain.analog(a, b, w, h);
    if (sigma > 0) y += sigma * gaussian(key, counter++);
    const float code = std::clamp(std::nearbyint(y * adc.inv_step), adc.code_min, adc.code_max);
    return static_cast<double>(code * adc.step);
  };

  // 2. Detector offsets from all-zero operands.
  const std::vector<float> zeros(L, 0.0f);
  std::vector<double> offset(static_cast<size_t>(W) * H, 0.0);
  // Offsets add coherently over long reductions (every chunk of a row meets the same node), so
  // they get far more averaging than the gains: 64 reads per pattern read.
  const int zero_repeats = 64 * options.repeats;
  for (int w = 0; w < W; ++w) {
    for (int h = 0; h < H; ++h) {
      double sum = 0;
      for (int r = 0; r < zero_repeats; ++r) sum += read(zeros.data(), zeros.data(), w, h);
      offset[w * H + h] = sum / zero_repeats;
    }
  }

  // 3. Hadamard patterns on both sides: M_wh = (1/N^2) Hl^T Y Hl, Hl = N x lambda Hadamard columns.
  int N = 1;
  while (N < L) N *= 2;
  std::vector<float> pattern(static_cast<size_t>(N) * L);
  for (int i = 0; i < N; ++i)
    for (int k = 0; k < L; ++k) pattern[i * L + k] = hadamard(i, k);
  std::vector<float> ea(static_cast<size_t>(W) * N * L), eb(static_cast<size_t>(H) * N * L);
  float scale;
  for (int w = 0; w < W; ++w)
    for (int i = 0; i < N; ++i)
      chain.encode(&pattern[i * L], L, 1, w, Side::a, false, &ea[(w * N + i) * L], &scale);
  for (int h = 0; h < H; ++h)
    for (int j = 0; j < N; ++j)
      chain.encode(&pattern[j * L], L, 1, h, Side::b, false, &eb[(h * N + j) * L], &scale);
  report.cycles = static_cast<int64_t>(N) * N * options.repeats + zero_repeats;

  const size_t nodes = static_cast<size_t>(W) * H;
  std::vector<double> M(nodes * L * L, 0.0);  // [node][k][l]
  std::vector<double> Y(static_cast<size_t>(N) * N), T(static_cast<size_t>(L) * N);
  for (int w = 0; w < W; ++w) {
    for (int h = 0; h < H; ++h) {
      const size_t node = static_cast<size_t>(w) * H + h;
      for (int i = 0; i < N; ++i) {
        for (int j = 0; j < N; ++j) {
          double sum = 0;
          for (int r = 0; r < options.repeats; ++r) {
            sum += read(&ea[(w * N + i) * L], &eb[(h * N + j) * L], w, h);
          }
          Y[i * N + j] = sum / options.repeats - offset[node];
        }
      }
      // T = Hl^T Y (L x N), then M = T Hl / N^2.
      for (int k = 0; k < L; ++k)
        for (int j = 0; j < N; ++j) {
          double acc = 0;
          for (int i = 0; i < N; ++i) acc += pattern[i * L + k] * Y[i * N + j];
          T[k * N + j] = acc;
        }
      double* m = &M[node * L * L];
      for (int k = 0; k < L; ++k)
        for (int l = 0; l < L; ++l) {
          double acc = 0;
          for (int j = 0; j < N; ++j) acc += T[k * N + j] * pattern[j * L + l];
          m[k * L + l] = acc / (static_cast<double>(N) * N);
        }
    }
  }

  // Gains: log M_kk(w, h) = nu_wh + alpha_wk + beta_hk, fitted by alternating means.
  std::vector<double> D(nodes * L), nu(nodes, 0.0), alpha(static_cast<size_t>(W) * L, 0.0),
      beta(static_cast<size_t>(H) * L, 0.0);
  for (size_t n = 0; n < nodes; ++n)
    for (int k = 0; k < L; ++k) D[n * L + k] = std::log(std::max(M[(n * L + k) * L + k], 1e-9));
  for (int iter = 0; iter < 20; ++iter) {
    for (int w = 0; w < W; ++w)
      for (int h = 0; h < H; ++h) {
        double s = 0;
        for (int k = 0; k < L; ++k) s += D[(w * H + h) * L + k] - alpha[w * L + k] - beta[h * L + k];
        nu[w * H + h] = s / L;
      }
    for (int w = 0; w < W; ++w)
      for (int k = 0; k < L; ++k) {
        double s = 0;
        for (int h = 0; h < H; ++h) s += D[(w * H + h) * L + k] - nu[w * H + h] - beta[h * L + k];
        alpha[w * L + k] = s / H;
      }
    for (int h = 0; h < H; ++h)
      for (int k = 0; k < L; ++k) {
        double s = 0;
        for (int w = 0; w < W; ++w) s += D[(w * H + h) * L + k] - nu[w * H + h] - alpha[w * L + k];
        beta[h * L + k] = s / W;
      }
  }
  // Power uniformity across each lane's wavelength channels (std/mean), averaged over lanes.
  auto uniformity = [L](const std::vector<double>& logs, int lanes) {
    double total = 0;
    for (int lane = 0; lane < lanes; ++lane) {
      double mean = 0, sq = 0;
      for (int k = 0; k < L; ++k) mean += std::exp(logs[lane * L + k]);
      mean /= L;
      for (int k = 0; k < L; ++k) sq += std::pow(std::exp(logs[lane * L + k]) - mean, 2);
      total += std::sqrt(sq / L) / mean;
    }
    return 100.0 * total / lanes;
  };
  report.power_uniformity_pct = 0.5 * (uniformity(alpha, W) + uniformity(beta, H));

  // Crosstalk: sqrt(M_kl M_lk / (M_kk M_ll)) = S_kl (gain-free), S = C^T C normalised, S_k,k+1 = 2 XT.
  std::vector<double> s_adj(std::max(L - 1, 1), 0.0);
  for (size_t n = 0; n < nodes; ++n) {
    const double* m = &M[n * L * L];
    for (int k = 0; k + 1 < L; ++k) {
      const double prod = m[k * L + k + 1] * m[(k + 1) * L + k];
      const double diag = m[k * L + k] * m[(k + 1) * L + k + 1];
      s_adj[k] += diag > 0 && prod > 0 ? std::sqrt(prod / diag) : 0.0;
    }
  }
  double xt_mean = 0;
  for (int k = 0; k + 1 < L; ++k) {
    s_adj[k] /= static_cast<double>(nodes);
    xt_mean += s_adj[k] / 2.0;
  }
  xt_mean = L > 1 ? xt_mean / (L - 1) : 0.0;
  report.crosstalk_db = xt_mean > 0 ? to_db(xt_mean) : -200.0;

  std::vector<double> S(static_cast<size_t>(L) * L, 0.0);
  for (int k = 0; k < L; ++k) S[k * L + k] = 1.0;
  for (int k = 0; k + 1 < L; ++k) S[k * L + k + 1] = S[(k + 1) * L + k] = s_adj[k];
  for (int k = 0; k + 2 < L; ++k) {  // second neighbours: XT^2 through the middle channel
    S[k * L + k + 2] = S[(k + 2) * L + k] = s_adj[k] * s_adj[k + 1] / 4.0;
  }
  const std::vector<double> S_inv = invert(S, L);

  // 4. Corrections.
  Corrections c = Corrections::identity(W, H, L);
  c.predistort_a.assign(static_cast<size_t>(W) * L * L, 0.0f);
  c.predistort_b.assign(static_cast<size_t>(H) * L * L, 0.0f);
  for (int w = 0; w < W; ++w)
    for (int k = 0; k < L; ++k)
      c.predistort_a[(w * L + k) * L + k] = static_cast<float>(std::exp(-alpha[w * L + k]));
  for (int h = 0; h < H; ++h)
    for (int k = 0; k < L; ++k)
      for (int l = 0; l < L; ++l)
        c.predistort_b[(h * L + k) * L + l] =
            static_cast<float>(std::exp(-beta[h * L + k]) * S_inv[k * L + l]);
  for (size_t n = 0; n < nodes; ++n) {
    c.output_gain[n] = static_cast<float>(std::exp(-nu[n]));
    c.output_offset[n] = static_cast<float>(offset[n]);
  }

  // Residual non-uniformity against the simulator's ground truth: true diagonal gain over the
  // fitted one, for every node and channel.
  {
    const OpticalState truth = device.optical_state();
    const double xt = truth.crosstalk;
    double mean = 0, sq = 0;
    const double count = static_cast<double>(nodes) * L;
    std::vector<double> ratio(nodes * L);
    for (int w = 0; w < W; ++w)
      for (int h = 0; h < H; ++h)
        for (int k = 0; k < L; ++k) {
          const int neighbours = (k > 0) + (k + 1 < L);
          const double s_kk = 1.0 + neighbours * xt * xt;
          const double true_kk = truth.node_gain[w * H + h] * truth.gain_a[w * L + k] *
                                 truth.gain_b[h * L + k] * s_kk / L;
          const double fit = std::exp(nu[w * H + h] + alpha[w * L + k] + beta[h * L + k]);
          const double r = true_kk / fit;
          ratio[(w * H + h) * L + k] = r;
          mean += r;
        }
    mean /= count;
    for (double r : ratio) sq += (r - mean) * (r - mean);
    report.residual_uniformity_pct = 100.0 * std::sqrt(sq / count) / mean;
  }

  data.time_s = device.time_s();
  data.temperature_offset_k = device.temperature_offset_k();
  data.ring_tuning_pm = device.ring_tuning_pm();
  data.corrections = c;
  device.set_corrections(std::move(c), data.temperature_offset_k);
  data.corrections.active = true;
  if (options.measure_error) report.rel_error_after = probe_attention_error(device, options.seed);
  return data;
}

void apply_calibration(SimulatedDevice& device, const CalibrationData& data) {
  const DeviceParams& p = device.params();
  if (data.profile != p.name || data.device_seed != device.config().device_seed ||
      data.width != p.core_width || data.height != p.core_height ||
      data.wavelengths != p.wavelengths) {
    throw std::runtime_error("calibration data is for profile '" + data.profile + "' device seed " +
                             std::to_string(data.device_seed) + ", not this device ('" + p.name +
                             "', seed " + std::to_string(device.config().device_seed) + ")");
  }
  device.set_ring_tuning(data.ring_tuning_pm);
  device.set_corrections(data.corrections, data.temperature_offset_k);
}

std::string calibration_to_json(const CalibrationData& d) {
  nlohmann::json j;
  j["format"] = "pfa.photonic.calibration/1";
  j["profile"] = d.profile;
  j["device_seed"] = d.device_seed;
  j["geometry"] = {{"width", d.width}, {"height", d.height}, {"wavelengths", d.wavelengths}};
  j["time_s"] = d.time_s;
  j["temperature_offset_k"] = d.temperature_offset_k;
  j["ring_tuning_pm"] = d.ring_tuning_pm;
  j["corrections"] = {{"predistort_a", d.corrections.predistort_a},
                      {"predistort_b", d.corrections.predistort_b},
                      {"output_gain", d.corrections.output_gain},
                      {"output_offset", d.corrections.output_offset}};
  const CalibrationReport& r = d.report;
  j["report"] = {{"wavelength_error_pm_before", r.wavelength_error_pm_before},
                 {"wavelength_error_pm_after", r.wavelength_error_pm_after},
                 {"power_uniformity_pct", r.power_uniformity_pct},
                 {"residual_uniformity_pct", r.residual_uniformity_pct},
                 {"crosstalk_db", r.crosstalk_db},
                 {"crosstalk_db_design", r.crosstalk_db_design},
                 {"rel_error_before", r.rel_error_before},
                 {"rel_error_after", r.rel_error_after},
                 {"cycles", r.cycles},
                 {"heater_power_w", r.heater_power_w}};
  return j.dump();
}

CalibrationData calibration_from_json(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text);
  if (j.value("format", std::string()) != "pfa.photonic.calibration/1") {
    throw std::runtime_error("not a pfa photonic calibration record");
  }
  CalibrationData d;
  d.profile = j.at("profile").get<std::string>();
  d.device_seed = j.at("device_seed").get<uint64_t>();
  d.width = j.at("geometry").at("width").get<int>();
  d.height = j.at("geometry").at("height").get<int>();
  d.wavelengths = j.at("geometry").at("wavelengths").get<int>();
  d.time_s = j.at("time_s").get<double>();
  d.temperature_offset_k = j.at("temperature_offset_k").get<double>();
  d.ring_tuning_pm = j.at("ring_tuning_pm").get<std::vector<double>>();
  const auto& c = j.at("corrections");
  d.corrections = Corrections::identity(d.width, d.height, d.wavelengths);
  d.corrections.active = true;
  d.corrections.predistort_a = c.at("predistort_a").get<std::vector<float>>();
  d.corrections.predistort_b = c.at("predistort_b").get<std::vector<float>>();
  d.corrections.output_gain = c.at("output_gain").get<std::vector<float>>();
  d.corrections.output_offset = c.at("output_offset").get<std::vector<float>>();
  const size_t nodes = static_cast<size_t>(d.width) * d.height;
  const size_t l2 = static_cast<size_t>(d.wavelengths) * d.wavelengths;
  if (d.corrections.output_gain.size() != nodes || d.corrections.output_offset.size() != nodes ||
      d.corrections.predistort_a.size() != d.width * l2 ||
      d.corrections.predistort_b.size() != d.height * l2 ||
      d.ring_tuning_pm.size() != static_cast<size_t>(d.width + d.height) * d.wavelengths) {
    throw std::runtime_error("photonic calibration record has inconsistent sizes");
  }
  const auto& r = j.at("report");
  CalibrationReport& rep = d.report;
  rep.wavelength_error_pm_before = r.at("wavelength_error_pm_before").get<double>();
  rep.wavelength_error_pm_after = r.at("wavelength_error_pm_after").get<double>();
  rep.power_uniformity_pct = r.at("power_uniformity_pct").get<double>();
  rep.residual_uniformity_pct = r.at("residual_uniformity_pct").get<double>();
  rep.crosstalk_db = r.at("crosstalk_db").get<double>();
  rep.crosstalk_db_design = r.at("crosstalk_db_design").get<double>();
  rep.rel_error_before = r.at("rel_error_before").get<double>();
  rep.rel_error_after = r.at("rel_error_after").get<double>();
  rep.cycles = r.at("cycles").get<int64_t>();
  rep.heater_power_w = r.at("heater_power_w").get<double>();
  return d;
}

std::string summary(const CalibrationReport& r) {
  char buf[384];
  std::snprintf(buf, sizeof buf,
                "wavelength error %.1f -> %.2f pm, power uniformity %.2f %% (residual %.2f %%), "
                "crosstalk %.1f dB (design %.1f dB), probe error %.4f -> %.4f, %lld cycles, "
                "heaters %.1f mW",
                r.wavelength_error_pm_before, r.wavelength_error_pm_after, r.power_uniformity_pct,
                r.residual_uniformity_pct, r.crosstalk_db, r.crosstalk_db_design,
                r.rel_error_before, r.rel_error_after, static_cast<long long>(r.cycles),
                r.heater_power_w * 1e3);
  return buf;
}

double probe_attention_error(const SimulatedDevice& device, uint64_t seed) {
  constexpr int64_t kSeq = 64, kDim = 64;
  std::vector<float> q(kSeq * kDim), k(kSeq * kDim), v(kSeq * kDim), o(kSeq * kDim);
  const uint64_t key = stream_key(seed, 303);
  for (int64_t i = 0; i < kSeq * kDim; ++i) {
    q[i] = static_cast<float>(2.0 * uniform(key, 3 * i) - 1.0);
    k[i] = static_cast<float>(2.0 * uniform(key, 3 * i + 1) - 1.0);
    v[i] = static_cast<float>(2.0 * uniform(key, 3 * i + 2) - 1.0);
  }
  kernels::AttentionParams p;
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.out = o.data();
  p.batch = p.heads_q = p.heads_kv = 1;
  p.seqlen_q = p.seqlen_k = kSeq;
  p.head_dim = kDim;
  for (auto* s : {p.q_stride, p.k_stride, p.v_stride, p.o_stride}) {
    s[0] = kSeq * kDim;
    s[1] = kDim;
    s[2] = kDim;
  }
  p.softmax_scale = 1.0f / std::sqrt(static_cast<float>(kDim));
  photonic_attention(device, p, seed);
  return sampled_error(p, static_cast<int>(kSeq)).rel_error;
}

}  // namespace pfa::photonic

#include "pfa/photonic/cost_model.h"

#include "pfa/photonic/receiver_noise.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>

namespace pfa::photonic {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

constexpr double kDbPerBit = 3.0103;  // 10 log10(2): the laser doubles with each output bit

}  // namespace

double EnergyBreakdown::total_j() const {
  return laser_j + dac_j + modulator_j + detector_j + adc_j + thermal_tuning_j + sram_j +
         accumulate_j + dram_j + softmax_j;
}

EnergyBreakdown& EnergyBreakdown::operator+=(const EnergyBreakdown& o) {
  laser_j += o.laser_j;
  dac_j += o.dac_j;
  modulator_j += o.modulator_j;
  detector_j += o.detector_j;
  adc_j += o.adc_j;
  thermal_tuning_j += o.thermal_tuning_j;
  sram_j += o.sram_j;
  accumulate_j += o.accumulate_j;
  dram_j += o.dram_j;
  softmax_j += o.softmax_j;
  return *this;
}

std::vector<std::pair<std::string, double>> EnergyBreakdown::items() const {
  return {{"laser", laser_j},           {"dac", dac_j},
          {"modulator", modulator_j},   {"detector_tia", detector_j},
          {"adc", adc_j},               {"thermal_tuning", thermal_tuning_j},
          {"sram", sram_j},             {"accumulate", accumulate_j},
          {"dram", dram_j},             {"softmax", softmax_j}};
}

std::string describe(const EnergyBreakdown& e) {
  const double total = e.total_j();
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.4g J:", total);
  std::string out = buf;
  for (const auto& [name, j] : e.items()) {
    std::snprintf(buf, sizeof buf, " %s %.1f%%", name.c_str(), total > 0 ? 100.0 * j / total : 0.0);
    out += buf;
  }
  return out;
}

double adc_energy_pj(const DeviceParams& p, int bits) {
  return p.adc_reference_pj * bits / p.adc_reference_bits;
}

double dac_energy_pj(const DeviceParams& p, int bits) {
  auto shape = [](int b) { return std::ldexp(1.0, b) / b; };
  return p.dac_reference_pj * shape(bits) / shape(p.dac_reference_bits);
}

double path_insertion_loss_db(const DeviceParams& p) {
  const int fan_out = std::max(p.core_width, p.core_height);
  const double levels = std::ceil(std::log2(static_cast<double>(fan_out)));
  const double modulation = p.modulator_insertion_loss_db + 2.0 * p.router_insertion_loss_db +
                            p.y_branch_insertion_loss_db * levels;
  const double node = p.y_branch_insertion_loss_db + p.phase_shifter_insertion_loss_db +
                      p.coupler_insertion_loss_db;
  return modulation + node;
}

double received_power_dbm(const DeviceParams& p, const CostConfig& c) {
  return p.photodetector_sensitivity_dbm + kDbPerBit * c.adc_bits + c.optical_power_offset_db;
}

double laser_optical_w(const DeviceParams& p, const CostConfig& c) {
  const double split_db = 10.0 * std::log10(static_cast<double>(p.core_width) * p.core_height);
  return dbm_to_w(received_power_dbm(p, c) + path_insertion_loss_db(p) + split_db);
}

double expected_mean_tuning_pm(const DeviceParams& p) {
  return p.wavelength_offset_sigma_pm * std::sqrt(2.0 / std::numbers::pi);  // E|N(0, s^2)|
}

CorePower core_power(const DeviceParams& p, const CostConfig& c) {
  const double f = p.clock_hz;
  const double inputs = static_cast<double>(p.core_width + p.core_height) * p.wavelengths;
  const double nodes = static_cast<double>(p.core_width) * p.core_height;
  CorePower w;
  w.laser_w = laser_optical_w(p, c) / p.laser_wall_plug_efficiency;
  w.dac_w = inputs * dac_energy_pj(p, c.dac_bits) * 1e-12 * f;
  w.modulator_w = inputs * (p.modulator_energy_fj_per_bit * 1e-15 * f +
                            (p.modulator_static_mw + 2.0 * p.router_static_mw) * 1e-3);
  w.detector_w = nodes * (p.photodetector_mw + p.tia_mw) * 1e-3;
  w.adc_w = nodes * adc_energy_pj(p, c.adc_bits) * 1e-12 * f;
  const double tuning_pm = c.mean_tuning_pm >= 0 ? c.mean_tuning_pm : expected_mean_tuning_pm(p);
  w.thermal_w = inputs * tuning_pm * 1e-3 * p.heater_mw_per_nm * 1e-3;
  return w;
}

ProductCost product_cost(const DeviceParams& p, const CostConfig& c, int64_t m, int64_t n,
                         int64_t k, int64_t tiles) {
  ProductCost cost;
  if (tiles < 0) {
    tiles = ceil_div(m, p.core_width) * ceil_div(n, p.core_height) * ceil_div(k, p.wavelengths);
  }
  cost.tiles = tiles;
  cost.macs = m * n * k;
  const int64_t inputs = static_cast<int64_t>(p.core_width + p.core_height) * p.wavelengths;
  const int64_t nodes = static_cast<int64_t>(p.core_width) * p.core_height;
  cost.dac_conversions = tiles * inputs;
  cost.adc_conversions = tiles * nodes;

  const CorePower w = core_power(p, c);
  const double cycle_s = 1.0 / p.clock_hz;
  const double t = static_cast<double>(tiles);
  EnergyBreakdown& e = cost.energy;
  e.laser_j = t * w.laser_w * cycle_s;
  e.dac_j = t * w.dac_w * cycle_s;
  e.modulator_j = t * w.modulator_w * cycle_s;
  e.detector_j = t * w.detector_w * cycle_s;
  e.adc_j = t * w.adc_w * cycle_s;
  e.thermal_tuning_j = t * w.thermal_w * cycle_s;
  // Operand tiles read from SRAM every cycle (at DAC resolution); results written once in fp32.
  const double words_per_cycle = static_cast<double>(inputs) * c.dac_bits / 16.0;
  e.sram_j = (t * words_per_cycle + 2.0 * static_cast<double>(m * n)) * p.sram_pj_per_16bit * 1e-12;
  e.accumulate_j = t * static_cast<double>(nodes) * p.digital_accumulate_pj * 1e-12;
  cost.latency_s = (static_cast<double>(ceil_div(tiles, p.cores)) + p.pipeline_latency_cycles) *
                   cycle_s;
  return cost;
}

double AttentionCost::energy_per_mac_j() const {
  const double macs = static_cast<double>(qk.macs + pv.macs);
  return macs > 0 ? energy.total_j() / macs : 0.0;
}

AttentionCost attention_cost(const DeviceParams& p, const CostConfig& c, const AttentionShape& s) {
  const int64_t W = p.core_width, H = p.core_height, L = p.wavelengths;
  const int64_t d = s.head_dim;
  // Per head: tiles each product needs and the scores that are not masked.
  int64_t qk_tiles = 0, pv_tiles = 0, elements = 0;
  if (!s.causal) {
    qk_tiles = ceil_div(s.seqlen_q, W) * ceil_div(s.seqlen_k, H) * ceil_div(d, L);
    pv_tiles = ceil_div(s.seqlen_q, W) * ceil_div(d, H) * ceil_div(s.seqlen_k, L);
    elements = s.seqlen_q * s.seqlen_k;
  } else {
    const int64_t shift = s.seqlen_k - s.seqlen_q;  // bottom-right alignment
    for (int64_t r0 = 0; r0 < s.seqlen_q; r0 += W) {
      const int64_t r1 = std::min(s.seqlen_q, r0 + W) - 1;
      const int64_t keys = std::min(s.seqlen_k, r1 + shift + 1);  // keys the tile's last row sees
      if (keys <= 0) continue;
      qk_tiles += ceil_div(keys, H) * ceil_div(d, L);
      pv_tiles += ceil_div(d, H) * ceil_div(keys, L);
    }
    for (int64_t i = 0; i < s.seqlen_q; ++i) {
      elements += std::clamp<int64_t>(i + shift + 1, 0, s.seqlen_k);
    }
  }
  const int64_t heads = s.batch * s.heads_q;
  AttentionCost cost;
  cost.qk = product_cost(p, c, s.seqlen_q, s.seqlen_k, d, qk_tiles * heads);
  cost.pv = product_cost(p, c, s.seqlen_q, d, s.seqlen_k, pv_tiles * heads);
  // product_cost counted one head's dense outputs; fix MACs and output writes for all heads.
  cost.qk.macs = cost.pv.macs = elements * d * heads;
  const double word_j = p.sram_pj_per_16bit * 1e-12;
  cost.qk.energy.sram_j += 2.0 * static_cast<double>(s.seqlen_q * s.seqlen_k) * (heads - 1) * word_j;
  cost.pv.energy.sram_j += 2.0 * static_cast<double>(s.seqlen_q * d) * (heads - 1) * word_j;

  cost.softmax_elements = elements * heads;
  cost.softmax_latency_s = static_cast<double>(cost.softmax_elements) / p.softmax_elements_per_s;
  cost.energy += cost.qk.energy;
  cost.energy += cost.pv.energy;
  // Scores go to SRAM and come back as probabilities (fp32 each way: 4 words per element).
  cost.energy.sram_j += 4.0 * static_cast<double>(cost.softmax_elements) * word_j;
  cost.energy.softmax_j = static_cast<double>(cost.softmax_elements) * p.softmax_pj_per_element * 1e-12;
  const double io_elements = static_cast<double>(s.batch) *
      (2.0 * s.seqlen_q * s.heads_q * d + 2.0 * s.seqlen_k * s.heads_kv * d);
  cost.energy.dram_j = io_elements * s.bytes_per_element / 2.0 * p.dram_pj_per_16bit * 1e-12;
  cost.latency_s = cost.qk.latency_s + cost.softmax_latency_s + cost.pv.latency_s;
  return cost;
}

}  // namespace pfa::photonic

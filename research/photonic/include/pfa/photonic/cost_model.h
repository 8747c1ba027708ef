// The cost model: energy and latency of products and attention calls on the simulated engine,
// from the device parameters alone. Structure (after Lightening-Transformer's crossbar model):
//   laser (electrical) = 10^((sensitivity + path loss + 10 log10(W H) + 3.01 adc_bits + offset)/10)
//                        / wall-plug efficiency          -- the laser is sized so each detector
//                                                           receives 2^bits x its sensitivity
//   input side, per cycle:  (W + H) lambda x (DAC + modulator + 2 WDM routers)
//   output side, per cycle: W H x (photodetector + TIA + ADC)
//   one cycle = one tile pass = W H lambda MACs on one core
// plus what the optics do not do: thermal tuning of the rings, SRAM traffic for operand tiles,
// digital accumulation of partial sums, DRAM for the call's tensors and the electronic softmax.
#pragma once

#include "device_params.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace pfa::photonic {

// What the cost depends on besides the device: resolution and optical power.
struct CostConfig {
  int dac_bits = 8;
  int adc_bits = 8;
  double optical_power_offset_db = 0;  // received power relative to the 2^bits budget
  // Mean |ring detuning| the heaters correct, pm; < 0: expected value for the profile's variation.
  double mean_tuning_pm = -1;
};

// Energy by component, joules.
struct EnergyBreakdown {
  double laser_j = 0;
  double dac_j = 0;
  double modulator_j = 0;  // modulators + WDM routers
  double detector_j = 0;   // photodetectors + TIAs
  double adc_j = 0;
  double thermal_tuning_j = 0;
  double sram_j = 0;
  double accumulate_j = 0;
  double dram_j = 0;
  double softmax_j = 0;

  double total_j() const;
  double converters_j() const { return dac_j + adc_j; }
  EnergyBreakdown& operator+=(const EnergyBreakdown& o);
  // (component name, joules) in a fixed order, for reports.
  std::vector<std::pair<std::string, double>> items() const;
};

// Power of one fully busy core, watts, by component (the electrical view of one cycle).
struct CorePower {
  double laser_w = 0, dac_w = 0, modulator_w = 0, detector_w = 0, adc_w = 0, thermal_w = 0;
  double total_w() const { return laser_w + dac_w + modulator_w + detector_w + adc_w + thermal_w; }
};

// Energy per conversion at a resolution: SAR ADC ~ bits, current-steering DAC ~ 2^bits / bits.
double adc_energy_pj(const DeviceParams& p, int bits);
double dac_energy_pj(const DeviceParams& p, int bits);
// Insertion loss along the most lossless optical path, dB (modulation path + computation node).
double path_insertion_loss_db(const DeviceParams& p);
// Full-scale optical power at one detector, dBm: sensitivity + 3.01 adc_bits + offset.
double received_power_dbm(const DeviceParams& p, const CostConfig& c);
// Optical power the laser emits for one core, watts.
double laser_optical_w(const DeviceParams& p, const CostConfig& c);
double expected_mean_tuning_pm(const DeviceParams& p);
CorePower core_power(const DeviceParams& p, const CostConfig& c);

struct ProductCost {
  int64_t tiles = 0;         // tile passes (cycles summed over cores)
  int64_t macs = 0;          // useful multiply-accumulates
  int64_t dac_conversions = 0;
  int64_t adc_conversions = 0;
  double latency_s = 0;
  EnergyBreakdown energy;
};

// C[M x N] = A[M x K] . B[N x K]^T with both operands modulated every cycle. `tiles` overrides the
// dense tile count (causal masking skips tiles); < 0 means dense.
ProductCost product_cost(const DeviceParams& p, const CostConfig& c, int64_t m, int64_t n, int64_t k,
                         int64_t tiles = -1);

struct AttentionShape {
  int64_t batch = 1, heads_q = 1, heads_kv = 1, seqlen_q = 1, seqlen_k = 1, head_dim = 64;
  bool causal = false;
  int bytes_per_element = 2;  // of q, k, v and out in memory
};

struct AttentionCost {
  ProductCost qk, pv;         // summed over batch and heads
  int64_t softmax_elements = 0;
  double softmax_latency_s = 0;
  EnergyBreakdown energy;     // everything, softmax and DRAM included
  double latency_s = 0;       // qk + softmax + pv, not overlapped (conservative)
  double energy_per_mac_j() const;
};

AttentionCost attention_cost(const DeviceParams& p, const CostConfig& c, const AttentionShape& s);

// One-line and multi-line renderings for logs and reports.
std::string describe(const EnergyBreakdown& e);

}  // namespace pfa::photonic

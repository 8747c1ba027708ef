// The cost model against a hand calculation from the generic profile's parameter values, and the
// published anchor (about 309 fJ/MAC at 4 bits, converters dominating, REFERENCES.md).
#include <pfa/photonic/cost_model.h>
#include <pfa/photonic/device_params.h>
#include <pfa/photonic/mzi_mesh.h>

#include <gtest/gtest.h>

#include <cmath>

namespace pfa::photonic {
namespace {

TEST(Profiles, EveryBuiltInProfileLoadsWithUnitsAndSources) {
  const auto names = builtin_profile_names();
  ASSERT_GE(names.size(), 2u);
  for (const auto& name : names) {
    const DeviceParams p = load_profile(name);
    EXPECT_EQ(p.name, name);
    EXPECT_NE(p.label.find("pproximation"), std::string::npos) << name << " must say it is an approximation";
    EXPECT_GT(p.notes.size(), 40u);
    for (const auto& [key, note] : p.notes) {
      EXPECT_FALSE(note.unit.empty()) << name << "." << key;
      EXPECT_FALSE(note.source.empty()) << name << "." << key;
    }
  }
  EXPECT_THROW(load_profile("no_such_profile"), std::runtime_error);
}

// One product, C[24 x 24] = A[24 x 24] . B^T: 2 x 2 x 2 = 8 tile passes on a 12 x 12 x 12 core.
TEST(CostModel, ProductEnergyEqualsAHandCalculation) {
  const DeviceParams p = load_profile("generic");
  CostConfig c;
  c.dac_bits = c.adc_bits = 4;
  c.mean_tuning_pm = 10;
  const ProductCost cost = product_cost(p, c, 24, 24, 24);
  ASSERT_EQ(cost.tiles, 8);

  // By hand, from generic.json (W = H = lambda = 12, 5 GHz, 4-bit converters):
  const double cycle = 1 / 5e9;
  const double inputs = (12 + 12) * 12, nodes = 12 * 12;
  // laser: -25 dBm + 3.0103 x 4 bits + path loss (1.2 + 2 x 0.93 + 0.1 x log2(12)->4 levels
  //        + 0.1 + 0.33 + 0.33 = 4.22 dB) + 10 log10(144) dB, then / 0.2 wall plug
  const double laser_dbm = -25 + 3.0103 * 4 + 4.22 + 10 * std::log10(144.0);
  const double laser_w = 1e-3 * std::pow(10.0, laser_dbm / 10) / 0.2;
  const double dac_pj = 3.57 * (16.0 / 4) / (256.0 / 8);  // 0.446 pJ
  const double adc_pj = 1.48 * 4 / 8;                     // 0.74 pJ
  const double mod_w = 450e-15 * 5e9 + (0 + 2 * 0.275) * 1e-3;
  const double det_w = (1.1 + 3) * 1e-3;
  const double heater_w = inputs * 10e-3 * 4.0 * 1e-3;  // 10 pm x 4 mW/nm per ring
  EXPECT_NEAR(cost.energy.laser_j, 8 * laser_w * cycle, 1e-6 * 8 * laser_w * cycle);
  EXPECT_NEAR(cost.energy.dac_j, 8 * inputs * dac_pj * 1e-12, 1e-18);
  EXPECT_NEAR(cost.energy.modulator_j, 8 * inputs * mod_w * cycle, 1e-18);
  EXPECT_NEAR(cost.energy.detector_j, 8 * nodes * det_w * cycle, 1e-18);
  EXPECT_NEAR(cost.energy.adc_j, 8 * nodes * adc_pj * 1e-12, 1e-18);
  EXPECT_NEAR(cost.energy.thermal_tuning_j, 8 * heater_w * cycle, 1e-18);
  // SRAM: 288 operands x 4 bits / 16 per pass, plus 24 x 24 fp32 results (2 words each).
  EXPECT_NEAR(cost.energy.sram_j, (8 * inputs * 4 / 16 + 2 * 576) * 0.92e-12, 1e-18);
  EXPECT_NEAR(cost.energy.accumulate_j, 8 * nodes * 0.3e-12, 1e-18);
  EXPECT_EQ(cost.dac_conversions, 8 * 288);
  EXPECT_EQ(cost.adc_conversions, 8 * 144);
  // 8 tiles on 8 cores: one cycle, plus the 8-cycle pipeline.
  EXPECT_NEAR(cost.latency_s, 9 * cycle, 1e-15);
}

TEST(CostModel, GenericFourBitCoreReproducesTheAnchor) {
  const DeviceParams p = load_profile("generic");
  CostConfig c;
  c.dac_bits = c.adc_bits = 4;
  c.mean_tuning_pm = 0;  // the anchor counts no heater power
  const CorePower w = core_power(p, c);
  EXPECT_NEAR(w.total_w(), 2.67, 0.03);  // derived: 2.67 W per core
  const double macs_per_s = 12.0 * 12 * 12 * 5e9;
  const double fj_per_mac = w.total_w() / macs_per_s * 1e15;
  EXPECT_NEAR(fj_per_mac, 309, 5);
  // Converters, not the laser, dominate.
  EXPECT_NEAR(w.dac_w / w.total_w(), 0.24, 0.02);
  EXPECT_NEAR(w.adc_w / w.total_w(), 0.20, 0.02);
  EXPECT_LT(w.laser_w / w.total_w(), 0.05);
  // 8 bits: about 1.06 pJ/MAC.
  c.dac_bits = c.adc_bits = 8;
  EXPECT_NEAR(core_power(p, c).total_w() / macs_per_s * 1e12, 1.06, 0.05);
}

TEST(CostModel, AttentionEnergyPerMacWithinTwiceTheAnchorAtFourBits) {
  const DeviceParams p = load_profile("generic");
  CostConfig c;
  c.dac_bits = c.adc_bits = 4;
  AttentionShape s;
  s.seqlen_q = s.seqlen_k = 2048;
  s.head_dim = 128;
  s.heads_q = s.heads_kv = 8;
  const AttentionCost cost = attention_cost(p, c, s);
  const double fj = cost.energy_per_mac_j() * 1e15;
  EXPECT_GT(fj, 309 / 2.0);
  EXPECT_LT(fj, 309 * 2.0);
  const EnergyBreakdown& e = cost.energy;
  EXPECT_GT(e.converters_j(), 3 * e.laser_j);
  EXPECT_GT(e.converters_j(), e.modulator_j);
  EXPECT_GT(e.converters_j(), e.softmax_j);
  EXPECT_NEAR(e.total_j(), cost.qk.energy.total_j() + cost.pv.energy.total_j() + e.softmax_j +
                               e.dram_j + 4.0 * cost.softmax_elements * 0.92e-12,
              1e-9 * e.total_j());
  EXPECT_GT(cost.latency_s, 0);
}

TEST(CostModel, CausalSkipsMaskedTiles) {
  const DeviceParams p = load_profile("generic");
  AttentionShape s;
  s.seqlen_q = s.seqlen_k = 1024;
  const AttentionCost dense = attention_cost(p, CostConfig{}, s);
  s.causal = true;
  const AttentionCost causal = attention_cost(p, CostConfig{}, s);
  EXPECT_EQ(causal.softmax_elements, 1024 * 1025 / 2);
  EXPECT_LT(causal.qk.tiles, 0.6 * dense.qk.tiles);
  EXPECT_GT(causal.qk.tiles, 0.45 * dense.qk.tiles);
}

// The documented non-option: re-programming an MZI mesh per dynamic K tile costs far more time
// than the crossbar needs for the whole product.
TEST(MziMesh, ReprogrammingDominatesForDynamicOperands) {
  const DeviceParams p = load_profile("generic");
  const int64_t L = 1024, d = 64;
  const MziMeshEstimate mesh = mzi_mesh_dynamic_product(p, L, L, d);
  const ProductCost crossbar = product_cost(p, CostConfig{}, L, L, d);
  EXPECT_GT(mesh.settle_s, 100 * crossbar.latency_s);
}

}  // namespace
}  // namespace pfa::photonic

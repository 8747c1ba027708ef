// Closed-form photoreceiver noise and converter resolution: the formulas the simulated signal
// chain draws its noise from, and the ones tests check it against.
//   shot     sigma^2 = 2 q (I + I_dark) df
//   thermal  sigma^2 = 4 k T df / R_L
//   RIN      sigma^2 = RIN * I^2 * df
//   SNR_dB = 6.02 ENOB + 1.76
#pragma once

#include <cmath>

namespace pfa::photonic {

struct DeviceParams;

inline constexpr double kElectronCharge_c = 1.602176634e-19;
inline constexpr double kBoltzmann_j_per_k = 1.380649e-23;

struct ReceiverInputs {
  double optical_power_w = 0;   // full-scale optical signal at the detector
  double responsivity_a_per_w = 1;
  double bandwidth_hz = 2.5e9;
  double temperature_k = 300;
  double load_resistance_ohm = 1000;
  double dark_current_a = 0.1e-9;
  double rin_per_hz = 0;  // linear (10^(dB/10)); 0 = no RIN
};

struct ReceiverNoise {
  double signal_current_a = 0;
  double shot_a2 = 0, thermal_a2 = 0, rin_a2 = 0;  // variances in A^2
  double total_a2() const { return shot_a2 + thermal_a2 + rin_a2; }
  double snr() const { return signal_current_a * signal_current_a / total_a2(); }
  double snr_db() const;
  double enob() const;
  // Noise standard deviation relative to the full-scale signal current.
  double relative_sigma() const;
};

ReceiverNoise receiver_noise(const ReceiverInputs& in);

// The inputs for a device's receiver at a given full-scale received power.
ReceiverInputs receiver_inputs(const DeviceParams& p, double received_power_dbm);

inline double dbm_to_w(double dbm) { return 1e-3 * std::pow(10.0, dbm / 10.0); }
inline double w_to_dbm(double w) { return 10.0 * std::log10(w / 1e-3); }

// SNR of an ideal b-bit quantiser for a full-scale sine, and its inverse.
inline double snr_db_of_bits(double bits) { return 6.02 * bits + 1.76; }
inline double bits_of_snr_db(double snr_db) { return (snr_db - 1.76) / 6.02; }

}  // namespace pfa::photonic

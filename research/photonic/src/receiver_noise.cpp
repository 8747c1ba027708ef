#include "pfa/photonic/receiver_noise.h"

#include "pfa/photonic/device_params.h"
#include "pfa/photonic/ring_crosstalk.h"

#include <cmath>

namespace pfa::photonic {

double ReceiverNoise::snr_db() const { return 10.0 * std::log10(snr()); }
double ReceiverNoise::enob() const { return bits_of_snr_db(snr_db()); }
double ReceiverNoise::relative_sigma() const {
  return signal_current_a > 0 ? std::sqrt(total_a2()) / signal_current_a : 0.0;
}

ReceiverNoise receiver_noise(const ReceiverInputs& in) {
  ReceiverNoise n;
  const double current_a = in.responsivity_a_per_w * in.optical_power_w;
  n.signal_current_a = current_a;
  n.shot_a2 = 2.0 * kElectronCharge_c * (current_a + in.dark_current_a) * in.bandwidth_hz;
  n.thermal_a2 = 4.0 * kBoltzmann_j_per_k * in.temperature_k * in.bandwidth_hz /
                 in.load_resistance_ohm;
  n.rin_a2 = in.rin_per_hz * current_a * current_a * in.bandwidth_hz;
  return n;
}

ReceiverInputs receiver_inputs(const DeviceParams& p, double received_power_dbm) {
  ReceiverInputs in;
  in.optical_power_w = dbm_to_w(received_power_dbm);
  in.responsivity_a_per_w = p.responsivity_a_per_w;
  in.bandwidth_hz = p.receiver_bandwidth_hz();
  in.temperature_k = p.receiver_temperature_k;
  in.load_resistance_ohm = p.load_resistance_ohm;
  in.dark_current_a = p.dark_current_na * 1e-9;
  in.rin_per_hz = from_db(p.rin_db_per_hz);
  return in;
}

}  // namespace pfa::photonic

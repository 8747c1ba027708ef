// Inter-channel crosstalk of a ring filter/modulator from its Lorentzian line shape:
// XT(d) = 1 / (1 + (2 d / FWHM)^2), d = detuning between the ring and the neighbour's line.
// The same shape gives the transmission loss of a ring detuned from its own line.
#pragma once

#include <cmath>

namespace pfa::photonic {

// Power fraction of a line at `detuning_nm` that a ring of linewidth `fwhm_nm` passes.
inline double lorentzian(double detuning_nm, double fwhm_nm) {
  const double x = 2.0 * detuning_nm / fwhm_nm;
  return 1.0 / (1.0 + x * x);
}

inline double to_db(double ratio) { return 10.0 * std::log10(ratio); }
inline double from_db(double db) { return std::pow(10.0, db / 10.0); }

// Crosstalk from the adjacent channel at `spacing_nm`, as a power ratio.
inline double adjacent_crosstalk(double spacing_nm, double fwhm_nm) {
  return lorentzian(spacing_nm, fwhm_nm);
}

}  // namespace pfa::photonic

// A small exact state-vector simulator: n qubits held as 2^n complex amplitudes, the gates the
// QSANN circuits need (RY, RZ, CNOT) and exact Pauli-Z expectations. Every gate touches all 2^n
// amplitudes, so memory and time grow as 2^n: 12 qubits is 4096 amplitudes (32 KiB), 20 would be
// 8 MiB per state and far too slow to run once per token. Qubit w is bit w of the basis index.
#pragma once

#include <complex>
#include <cstdint>
#include <vector>

namespace pfa::research {

class StateVector {
 public:
  static constexpr int kMaxQubits = 20;

  // |0...0> on `qubits` qubits (1..kMaxQubits; throws std::invalid_argument otherwise).
  explicit StateVector(int qubits);

  int qubits() const { return qubits_; }
  const std::vector<std::complex<float>>& amplitudes() const { return amp_; }

  void reset();                         // back to |0...0>
  void ry(int wire, float theta);       // exp(-i theta Y / 2)
  void rz(int wire, float theta);       // exp(-i theta Z / 2)
  void cnot(int control, int target);
  double expectation_z(int wire) const;  // <Z_wire> in [-1, 1]
  double norm() const;                   // sum |amplitude|^2 (1 up to rounding)

 private:
  int qubits_;
  std::vector<std::complex<float>> amp_;
};

}  // namespace pfa::research

#include <pfa/research/state_vector.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace pfa::research {

StateVector::StateVector(int qubits) : qubits_(qubits) {
  if (qubits < 1 || qubits > kMaxQubits) {
    throw std::invalid_argument("state vector: qubits must be in [1, " +
                                std::to_string(kMaxQubits) + "], not " + std::to_string(qubits));
  }
  amp_.assign(size_t{1} << qubits, {0.f, 0.f});
  amp_[0] = {1.f, 0.f};
}

void StateVector::reset() {
  std::fill(amp_.begin(), amp_.end(), std::complex<float>{0.f, 0.f});
  amp_[0] = {1.f, 0.f};
}

void StateVector::ry(int wire, float theta) {
  const float c = std::cos(0.5f * theta), s = std::sin(0.5f * theta);
  const size_t bit = size_t{1} << wire;
  for (size_t i = 0; i < amp_.size(); ++i) {
    if (i & bit) continue;
    const auto a = amp_[i], b = amp_[i | bit];
    amp_[i] = c * a - s * b;
    amp_[i | bit] = s * a + c * b;
  }
}

void StateVector::rz(int wire, float theta) {
  const std::complex<float> down{std::cos(0.5f * theta), -std::sin(0.5f * theta)};
  const std::complex<float> up = std::conj(down);
  const size_t bit = size_t{1} << wire;
  for (size_t i = 0; i < amp_.size(); ++i) amp_[i] *= (i & bit) ? up : down;
}

void StateVector::cnot(int control, int target) {
  const size_t c = size_t{1} << control, t = size_t{1} << target;
  for (size_t i = 0; i < amp_.size(); ++i) {
    if ((i & c) && !(i & t)) std::swap(amp_[i], amp_[i | t]);
  }
}

double StateVector::expectation_z(int wire) const {
  const size_t bit = size_t{1} << wire;
  double z = 0;
  for (size_t i = 0; i < amp_.size(); ++i) {
    const double p = std::norm(amp_[i]);
    z += (i & bit) ? -p : p;
  }
  return z;
}

double StateVector::norm() const {
  double n = 0;
  for (const auto& a : amp_) n += std::norm(a);
  return n;
}

}  // namespace pfa::research

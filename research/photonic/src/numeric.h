// Element loads and stores for fp32 / fp16 / bf16 tensors (round to nearest even on store).
#pragma once

#include <pfa/kernels/attention_params.h>

#include <cstdint>
#include <cstring>

namespace pfa::photonic::detail {

inline float bf16_bits_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t float_to_bf16_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

inline float fp16_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent == 0) {
    // zero or subnormal: value = mantissa * 2^-24
    const float v = static_cast<float>(mantissa) * 0x1.0p-24f;
    return sign ? -v : v;
  } else {
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t float_to_fp16_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;   // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to infinity
  if (abs < 0x38800000u) {                         // fp16 subnormal or zero
    float a;
    std::memcpy(&a, &abs, 4);
    const float scaled = a * 0x1.0p24f;  // in units of 2^-24, exact in fp32
    const auto rounded = static_cast<uint32_t>(__builtin_nearbyintf(scaled));  // ties to even
    return sign | static_cast<uint16_t>(rounded);
  }
  const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return sign | static_cast<uint16_t>((rounded - 0x38000000u) >> 13);
}

inline float load(const void* base, kernels::DType dtype, int64_t index) {
  switch (dtype) {
    case kernels::DType::fp32: return static_cast<const float*>(base)[index];
    case kernels::DType::fp16: return fp16_bits_to_float(static_cast<const uint16_t*>(base)[index]);
    case kernels::DType::bf16: return bf16_bits_to_float(static_cast<const uint16_t*>(base)[index]);
  }
  return 0.0f;
}

inline void store(void* base, kernels::DType dtype, int64_t index, float value) {
  switch (dtype) {
    case kernels::DType::fp32: static_cast<float*>(base)[index] = value; break;
    case kernels::DType::fp16: static_cast<uint16_t*>(base)[index] = float_to_fp16_bits(value); break;
    case kernels::DType::bf16: static_cast<uint16_t*>(base)[index] = float_to_bf16_bits(value); break;
  }
}

}  // namespace pfa::photonic::detail

// The portable path: plain C++ (the compiler may still use SSE2), for any x86-64 CPU.
#include "dtype_convert.h"
#include "fp32_tile_kernel.h"

namespace pfa::kernels::cpu {
namespace {

struct ScalarVec {
  using Reg = float;
  static constexpr int kWidth = 1;
  static constexpr int kRows = 4;
  static constexpr int kCols = 4;
  static Reg zero() { return 0.0f; }
  static Reg set1(float f) { return f; }
  static Reg load(const float* p) { return *p; }
  static void store(float* p, Reg r) { *p = r; }
  static Reg fmadd(Reg a, Reg b, Reg c) { return a * b + c; }
  static Reg mul(Reg a, Reg b) { return a * b; }
  static Reg add(Reg a, Reg b) { return a + b; }
  static Reg sub(Reg a, Reg b) { return a - b; }
  static Reg max(Reg a, Reg b) { return a > b ? a : b; }
  static float reduce_max(Reg r) { return r; }
  static float reduce_add(Reg r) { return r; }
  // 2^x = 2^n * 2^f with n = round(x), |f| <= 1/2; degree-7 Taylor polynomial of 2^f
  // (relative error below 1e-8 before rounding).
  static Reg exp2(Reg x) {
    if (!(x >= -126.0f)) return 0.0f;
    const float n = __builtin_nearbyintf(x);
    const float f = x - n;
    float p = 1.5252733804059840e-05f;
    p = p * f + 1.5403530393381609e-04f;
    p = p * f + 1.3333558146428443e-03f;
    p = p * f + 9.6181291076284772e-03f;
    p = p * f + 5.5504108664821580e-02f;
    p = p * f + 2.4022650695910071e-01f;
    p = p * f + 6.9314718055994531e-01f;
    p = p * f + 1.0f;
    return p * bits_to_float(static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23);
  }
  static void to_float_row(DType dtype, const void* base, int64_t offset, float* dst, int64_t n,
                           float scale) {
    if (dtype == DType::fp32) {
      const float* src = static_cast<const float*>(base) + offset;
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i] * scale;
    } else {
      const uint16_t* src = static_cast<const uint16_t*>(base) + offset;
      if (dtype == DType::bf16)
        for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(src[i]) * scale;
      else
        for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_float(src[i]) * scale;
    }
  }
  static void from_float_row(DType dtype, const float* src, void* base, int64_t offset, int64_t n,
                             float scale) {
    if (dtype == DType::fp32) {
      float* dst = static_cast<float*>(base) + offset;
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i] * scale;
    } else {
      uint16_t* dst = static_cast<uint16_t*>(base) + offset;
      if (dtype == DType::bf16)
        for (int64_t i = 0; i < n; ++i) dst[i] = float_to_bf16(src[i] * scale);
      else
        for (int64_t i = 0; i < n; ++i) dst[i] = float_to_fp16(src[i] * scale);
    }
  }
};

}  // namespace

const KernelOps kScalarOps = {1, 1, sizeof(float), &pack_block_fp32<ScalarVec>,
                              &run_tile_fp32<ScalarVec>,
                              &run_decode_fp32<ScalarVec>};

}  // namespace pfa::kernels::cpu

// What this CPU can run, read once with cpuid/xgetbv (and, for AMX, the kernel's permission).
#pragma once

namespace pfa::kernels::cpu {

struct CpuFeatures {
  bool avx2_fma = false;     // AVX2 + FMA + F16C, with the OS saving YMM state
  bool avx512 = false;       // AVX-512 F/BW/VL/DQ, with the OS saving ZMM and opmask state
  bool avx512_bf16 = false;  // vdpbf16ps / vcvtne2ps2bf16
  bool amx_bf16 = false;     // AMX tile + bf16, and permission to use the tile data granted
};

// Detected on first call; thread-safe.
const CpuFeatures& cpu_features() noexcept;

}  // namespace pfa::kernels::cpu

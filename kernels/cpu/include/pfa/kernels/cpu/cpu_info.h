// The CPU the cpu_flash kernels run on, for device fingerprints and benchmark headers.
#pragma once

namespace pfa::kernels::cpu {

// The cpuid brand string, e.g. "Intel(R) Xeon(R) Processor" ("unknown x86-64" when absent).
const char* cpu_model_name() noexcept;

}  // namespace pfa::kernels::cpu

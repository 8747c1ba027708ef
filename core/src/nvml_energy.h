// The GPU's total-energy counter through NVML, loaded at run time (libnvidia-ml.so.1, dlopen):
// pfa never links the driver's libraries. NVML counts millijoules since the driver loaded
// (nvmlDeviceGetTotalEnergyConsumption, Volta and later); the counter moves in steps (its
// update period is tens of milliseconds on current data-centre cards), so an energy per call is
// only meaningful over many calls: pfa-tune bench measures it over a window of back-to-back calls
// between two counter steps (cli/common/measure.cpp).
#pragma once

#include <cstdint>
#include <string>

namespace pfa::detail {

class NvmlEnergy {
 public:
  // Opens NVML and finds the device whose PCI bus id is `pci_bus_id` (as cudaDeviceGetPCIBusId
  // writes it), else the one with NVML index `fallback_index`. available() is false, with
  // why_not() saying why, when NVML, the device or its energy counter is missing.
  NvmlEnergy(const std::string& pci_bus_id, int fallback_index);
  ~NvmlEnergy();
  NvmlEnergy(const NvmlEnergy&) = delete;
  NvmlEnergy& operator=(const NvmlEnergy&) = delete;

  bool available() const noexcept { return device_ != nullptr; }
  const std::string& why_not() const noexcept { return why_; }
  const std::string& device_name() const noexcept { return name_; }

  // The counter in millijoules; false when the read fails.
  bool read_mj(uint64_t& millijoules) const noexcept;

 private:
  void* library_ = nullptr;
  void* device_ = nullptr;  // nvmlDevice_t
  int (*get_energy_)(void*, unsigned long long*) = nullptr;
  int (*shutdown_)() = nullptr;
  std::string why_;
  std::string name_;
};

}  // namespace pfa::detail

#include "nvml_energy.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>

namespace pfa::detail {

namespace {

// NVML's own types, as far as pfa uses them: nvmlReturn_t is an int, nvmlDevice_t a pointer.
using InitFn = int (*)();
using ShutdownFn = int (*)();
using ByBusIdFn = int (*)(const char*, void**);
using ByIndexFn = int (*)(unsigned, void**);
using EnergyFn = int (*)(void*, unsigned long long*);
using NameFn = int (*)(void*, char*, unsigned);
using ErrorFn = const char* (*)(int);

}  // namespace

NvmlEnergy::NvmlEnergy(const std::string& pci_bus_id, int fallback_index) {
  const char* env = std::getenv("PFA_NVML");
  for (const char* name : {env, "libnvidia-ml.so.1", "libnvidia-ml.so"}) {
    if (name == nullptr || name[0] == '\0') continue;
    if ((library_ = dlopen(name, RTLD_LAZY | RTLD_LOCAL)) != nullptr) break;
  }
  if (library_ == nullptr) {
    why_ = "NVML (libnvidia-ml.so.1) is not installed: energy stays modelled or unknown";
    return;
  }
  auto init = reinterpret_cast<InitFn>(dlsym(library_, "nvmlInit_v2"));
  shutdown_ = reinterpret_cast<ShutdownFn>(dlsym(library_, "nvmlShutdown"));
  auto by_bus = reinterpret_cast<ByBusIdFn>(dlsym(library_, "nvmlDeviceGetHandleByPciBusId_v2"));
  auto by_index = reinterpret_cast<ByIndexFn>(dlsym(library_, "nvmlDeviceGetHandleByIndex_v2"));
  auto name = reinterpret_cast<NameFn>(dlsym(library_, "nvmlDeviceGetName"));
  auto error = reinterpret_cast<ErrorFn>(dlsym(library_, "nvmlErrorString"));
  get_energy_ = reinterpret_cast<EnergyFn>(dlsym(library_, "nvmlDeviceGetTotalEnergyConsumption"));
  if (init == nullptr || by_index == nullptr || get_energy_ == nullptr) {
    why_ = "this NVML lacks nvmlInit_v2, nvmlDeviceGetHandleByIndex_v2 or the energy counter";
    dlclose(library_);
    library_ = nullptr;
    return;
  }
  auto text = [&](int code) {
    const char* t = error != nullptr ? error(code) : nullptr;
    return std::string(t != nullptr ? t : "NVML error ") + " (" + std::to_string(code) + ")";
  };
  if (const int e = init(); e != 0) {
    why_ = "nvmlInit_v2 failed: " + text(e);
    dlclose(library_);
    library_ = nullptr;
    shutdown_ = nullptr;
    return;
  }
  void* device = nullptr;
  if (!pci_bus_id.empty() && by_bus != nullptr) {
    if (by_bus(pci_bus_id.c_str(), &device) != 0) {
      // Some NVML versions want the 8-digit domain that the CUDA runtime shortens to 4.
      std::string wide = pci_bus_id;
      const size_t colon = wide.find(':');
      if (colon != std::string::npos && colon < 8) wide.insert(0, 8 - colon, '0');
      if (by_bus(wide.c_str(), &device) != 0) device = nullptr;
    }
  }
  if (device == nullptr && fallback_index >= 0) {
    if (const int e = by_index(static_cast<unsigned>(fallback_index), &device); e != 0) {
      why_ = "NVML has no device " + std::to_string(fallback_index) + ": " + text(e);
      device = nullptr;
    }
  }
  if (device == nullptr) {
    if (why_.empty()) why_ = "NVML has no device with PCI bus id " + pci_bus_id;
    return;
  }
  unsigned long long probe = 0;
  if (const int e = get_energy_(device, &probe); e != 0) {
    why_ = "the device has no total-energy counter: " + text(e);
    return;
  }
  if (name != nullptr) {
    char buffer[96] = {0};
    if (name(device, buffer, sizeof buffer) == 0) name_ = buffer;
  }
  device_ = device;
}

NvmlEnergy::~NvmlEnergy() {
  if (library_ != nullptr) {
    if (shutdown_ != nullptr) shutdown_();
    dlclose(library_);
  }
}

bool NvmlEnergy::read_mj(uint64_t& millijoules) const noexcept {
  if (device_ == nullptr) return false;
  unsigned long long value = 0;
  if (get_energy_(device_, &value) != 0) return false;
  millijoules = value;
  return true;
}

}  // namespace pfa::detail

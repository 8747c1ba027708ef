// One loaded backend plugin: its library, its function table and its context.
#pragma once

#include <pfa/plugin_abi.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

namespace pfa {

struct DeviceDescription {
  std::string name;
  std::string detail;
};

class Plugin {
 public:
  // Takes a table returned by a plugin's entry symbol and creates its context. `library` keeps the
  // shared library loaded for as long as the plugin lives. Throws pfa::Error when create fails.
  Plugin(std::shared_ptr<void> library, const pfa_plugin_api* api, std::filesystem::path path);
  ~Plugin();
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  const std::string& name() const noexcept { return name_; }
  const std::string& version() const noexcept { return version_; }
  const std::string& description() const noexcept { return description_; }
  const std::filesystem::path& path() const noexcept { return path_; }
  uint32_t abi_major() const noexcept { return api_->abi_major; }
  uint32_t abi_minor() const noexcept { return api_->abi_minor; }
  uint32_t properties() const noexcept { return api_->properties; }
  bool approximate() const noexcept { return api_->properties & PFA_PROP_APPROXIMATE; }
  bool simulated() const noexcept { return api_->properties & PFA_PROP_SIMULATED; }
  bool thread_safe() const noexcept { return api_->properties & PFA_PROP_THREAD_SAFE; }
  // Serves problems split over several devices. Only a plugin built for ABI 1.2 or later can
  // claim it: the bit meant nothing before, so an older plugin never gets a split problem.
  bool distributed() const noexcept {
    return api_->abi_minor >= 2 && (api_->properties & PFA_PROP_DISTRIBUTED);
  }
  bool serves_device_type(int32_t dl_device_type) const noexcept;
  std::string device_types_text() const;  // "cpu,cuda"

  // True when the backend serves the problem; otherwise false with the reason in `reason`.
  bool supports(const pfa_problem& problem, char* reason, size_t capacity) const noexcept;
  bool supports(const pfa_problem& problem, std::string* reason = nullptr) const;

  // The plugin's analytic prior; latency is +inf when the plugin could not estimate.
  pfa_estimate estimate(const pfa_problem& problem) const noexcept;

  // Runs the backend; serialised here when the plugin does not declare itself thread-safe.
  pfa_status run(const pfa_run_args& args, pfa_run_result& result, char* message,
                 size_t capacity) noexcept;

  DeviceDescription device_info(int32_t dl_device_type, int32_t device_id) const;

 private:
  std::shared_ptr<void> library_;
  const pfa_plugin_api* api_;
  pfa_context* context_ = nullptr;
  std::filesystem::path path_;
  std::string name_, version_, description_;
  std::mutex run_mutex_;
};

}  // namespace pfa

#include <pfa/error.h>
#include <pfa/plugin.h>
#include <pfa/problem.h>

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <exception>
#include <limits>

namespace pfa {

namespace {
constexpr size_t kMessageCapacity = 512;

// A plugin must return errors as status codes, but one that lets a C++ exception escape must not
// take the host down: the exception is caught here and turned into a status with its text.
template <class Call>
pfa_status contained(Call&& call, char* message, size_t capacity) noexcept {
  try {
    return call();
  } catch (const std::exception& e) {
    if (message && capacity) {
      std::snprintf(message, capacity, "the plugin threw a C++ exception across the ABI: %s",
                    e.what());
    }
  } catch (...) {
    if (message && capacity) {
      std::snprintf(message, capacity, "the plugin threw an unknown exception across the ABI");
    }
  }
  return PFA_STATUS_INTERNAL;
}
}

Plugin::Plugin(std::shared_ptr<void> library, const pfa_plugin_api* api,
               std::filesystem::path path)
    : library_(std::move(library)), api_(api), path_(std::move(path)) {
  name_ = api_->name ? api_->name : "";
  version_ = api_->version ? api_->version : "";
  description_ = api_->description ? api_->description : "";
  const pfa_host_info host{sizeof(pfa_host_info), PFA_ABI_VERSION_MAJOR, PFA_ABI_VERSION_MINOR,
                           PFA_VERSION_STRING};
  char message[kMessageCapacity] = {0};
  const pfa_status status = contained(
      [&] { return api_->create(&host, &context_, message, sizeof message); }, message,
      sizeof message);
  if (status != PFA_STATUS_OK) {
    throw Error(ErrorCode::plugin_load,
                fmt::format("{}: plugin '{}' failed to initialise: {}", path_.string(), name_,
                            message[0] ? message : "no message"));
  }
}

Plugin::~Plugin() {
  if (context_ != nullptr && api_->destroy != nullptr) api_->destroy(context_);
}

bool Plugin::serves_device_type(int32_t dl_device_type) const noexcept {
  return dl_device_type >= 0 && dl_device_type < 32 &&
         (api_->device_types & (1u << dl_device_type)) != 0;
}

std::string Plugin::device_types_text() const {
  std::string out;
  for (int32_t t = 0; t < 32; ++t) {
    if (!serves_device_type(t)) continue;
    if (!out.empty()) out += ',';
    out += device_name(t);
  }
  return out;
}

bool Plugin::supports(const pfa_problem& problem, char* reason, size_t capacity) const noexcept {
  if (reason && capacity) reason[0] = '\0';
  return contained([&] { return api_->supports(context_, &problem, reason, capacity); }, reason,
                   capacity) == PFA_STATUS_OK;
}

bool Plugin::supports(const pfa_problem& problem, std::string* reason) const {
  char buffer[kMessageCapacity] = {0};
  const bool ok = supports(problem, buffer, sizeof buffer);
  if (!ok && reason) *reason = buffer[0] ? buffer : "the plugin gave no reason";
  return ok;
}

pfa_estimate Plugin::estimate(const pfa_problem& problem) const noexcept {
  pfa_estimate estimate{};
  estimate.struct_size = sizeof estimate;
  estimate.energy_j = -1;
  char message[kMessageCapacity];
  if (api_->estimate == nullptr ||
      contained([&] { return api_->estimate(context_, &problem, &estimate, message, sizeof message); },
                message, sizeof message) != PFA_STATUS_OK ||
      !(estimate.latency_s > 0)) {
    estimate.latency_s = std::numeric_limits<double>::infinity();
  }
  return estimate;
}

pfa_status Plugin::run(const pfa_run_args& args, pfa_run_result& result, char* message,
                       size_t capacity) noexcept {
  auto call = [&] { return api_->run(context_, &args, &result, message, capacity); };
  if (thread_safe()) return contained(call, message, capacity);
  std::lock_guard lock(run_mutex_);
  return contained(call, message, capacity);
}

DeviceDescription Plugin::device_info(int32_t dl_device_type, int32_t device_id) const {
  pfa_device_info info{};
  info.struct_size = sizeof info;
  char message[kMessageCapacity] = {0};
  if (api_->device_info == nullptr ||
      contained([&] { return api_->device_info(context_, dl_device_type, device_id, &info, message,
                                               sizeof message); },
                message, sizeof message) != PFA_STATUS_OK) {
    return {"unknown", message};
  }
  info.name[sizeof info.name - 1] = '\0';
  info.detail[sizeof info.detail - 1] = '\0';
  return {info.name, info.detail};
}

}  // namespace pfa

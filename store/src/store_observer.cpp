#include <pfa/error.h>
#include <pfa/store/store_observer.h>

#include <cctype>
#include <chrono>
#include <cstring>

namespace pfa::store {

namespace {

const char* status_name(pfa_status status) noexcept {
  switch (status) {
    case PFA_STATUS_OK: return "ok";
    case PFA_STATUS_UNSUPPORTED: return "unsupported";
    case PFA_STATUS_INVALID_ARGUMENT: return "invalid_argument";
    case PFA_STATUS_OUT_OF_MEMORY: return "out_of_memory";
    case PFA_STATUS_DEVICE_ERROR: return "device_error";
    case PFA_STATUS_ABI_MISMATCH: return "abi_mismatch";
    case PFA_STATUS_INTERNAL: return "internal";
  }
  return "unknown_status";
}

// Writes "<status>: <message>" into a fixed field without allocating.
template <size_t N>
void set_failure(Text<N>& field, pfa_status status, const char* message) noexcept {
  const char* name = status_name(status);
  size_t used = 0;
  auto append = [&](const char* s, size_t n) {
    n = std::min(n, N - 1 - used);
    std::memcpy(field.data() + used, s, n);
    used += n;
  };
  append(name, std::strlen(name));
  if (message != nullptr && message[0] != '\0') {
    append(": ", 2);
    append(message, strnlen(message, N));
  }
  field[used] = '\0';
}

// "sm_90", "sm90a", "SM 90" -> "90"; "compute capability 9.0" -> "90"; else empty.
std::string cuda_arch(std::string_view detail) {
  std::string lower(detail);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (size_t at = lower.find("sm"); at != std::string::npos; at = lower.find("sm", at + 2)) {
    if (at > 0 && std::isalpha(static_cast<unsigned char>(lower[at - 1]))) continue;
    size_t i = at + 2;
    while (i < lower.size() && (lower[i] == '_' || lower[i] == ' ')) ++i;
    size_t j = i;
    while (j < lower.size() && std::isdigit(static_cast<unsigned char>(lower[j]))) ++j;
    if (j > i) return lower.substr(i, j - i);
  }
  if (const size_t at = lower.find("capability"); at != std::string::npos) {
    size_t i = at + 10;
    while (i < lower.size() && (lower[i] == ' ' || lower[i] == ':')) ++i;
    std::string digits;
    for (; i < lower.size() && (std::isdigit(static_cast<unsigned char>(lower[i])) ||
                                lower[i] == '.');
         ++i) {
      if (lower[i] != '.') digits += lower[i];
    }
    return digits;
  }
  return {};
}

}  // namespace

const char* pfa_version() noexcept { return PFA_VERSION_STRING; }

std::string device_class(int32_t dl_device_type, std::string_view device_detail) {
  if (dl_device_type == kDLCPU) return "cpu";
  const std::string base = device_name(dl_device_type);
  if (dl_device_type == kDLCUDA) {
    const std::string arch = cuda_arch(device_detail);
    return arch.empty() ? base : base + ":sm" + arch;
  }
  return base;
}

StoreObserver::StoreObserver(std::shared_ptr<AsyncWriter> writer, RecordSource source)
    : writer_(std::move(writer)), source_(source) {
  if (!writer_) {
    throw Error(ErrorCode::invalid_argument,
                "StoreObserver: the writer is null: pass an AsyncWriter or a store path");
  }
}

StoreObserver::StoreObserver(const std::filesystem::path& path, AsyncWriterOptions options,
                             RecordSource source)
    : StoreObserver(std::make_shared<AsyncWriter>(path, options), source) {}

const StoreObserver::Device* StoreObserver::find_device(const Plugin& plugin, int32_t type,
                                                        int32_t id) const noexcept {
  const size_t n = device_count_.load(std::memory_order_acquire);
  for (size_t i = 0; i < n; ++i) {
    const Device& d = devices_[i];
    if (d.plugin == &plugin && d.device_type == type && d.device_id == id) return &d;
  }
  return nullptr;
}

namespace {

// Asks the plugin once; the plugin call allocates, which is why its answer is cached.
template <class D>
void describe(D& d, const Plugin& plugin, int32_t type, int32_t id) noexcept {
  d.plugin = &plugin;
  d.device_type = type;
  d.device_id = id;
  try {
    const DeviceDescription info = plugin.device_info(type, id);
    set_text(d.name, info.name);
    set_text(d.detail, info.detail);
    set_text(d.device_class, device_class(type, info.detail));
  } catch (...) {
    set_text(d.name, "unknown");
    set_text(d.detail, "");
    set_text(d.device_class, device_name(type));
  }
}

}  // namespace

const StoreObserver::Device* StoreObserver::lookup_device(const Plugin& plugin, int32_t type,
                                                          int32_t id) noexcept {
  std::lock_guard lock(device_mutex_);
  if (const Device* d = find_device(plugin, type, id)) return d;  // another thread added it
  const size_t n = device_count_.load(std::memory_order_relaxed);
  if (n == kMaxDevices) return nullptr;
  describe(devices_[n], plugin, type, id);
  device_count_.store(n + 1, std::memory_order_release);
  return &devices_[n];
}

void StoreObserver::fill_record(const Execution& e, ExecutionRecord& r) noexcept {
  const Report& report = e.report;
  r.id = 0;
  r.timestamp_us = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  r.problem = e.problem;
  set_text(r.backend, e.plugin.name());
  set_text(r.backend_version, e.plugin.version());

  const int32_t type = e.problem.device_type;
  const int32_t id = e.problem.device_id;
  const Device* d = find_device(e.plugin, type, id);
  if (d == nullptr) d = lookup_device(e.plugin, type, id);
  if (d != nullptr) {
    r.device_name = d->name;
    r.device_detail = d->detail;
    r.device_class = d->device_class;
  } else {
    std::lock_guard lock(device_mutex_);  // more devices than the cache holds: ask every time
    describe(overflow_, e.plugin, type, id);
    r.device_name = overflow_.name;
    r.device_detail = overflow_.detail;
    r.device_class = overflow_.device_class;
  }

  const bool ok = e.status == PFA_STATUS_OK;
  // Simulated backends run on the host in no time that matters: their latency is the model's.
  r.latency_s = report.simulated ? report.modelled_latency_s : report.latency_s;
  r.wall_s = report.latency_s;
  r.energy_j = report.energy_j;
  r.energy_measured = report.energy_measured;
  r.rel_error = report.measured_rel_error;  // measured by the backend on this call's data, or -1
  r.error_estimate = report.error_estimate;
  r.ok = ok;
  if (ok) {
    r.failure[0] = '\0';
  } else {
    set_failure(r.failure, e.status, e.message);
  }
  r.explored = report.explored;
  r.simulated = report.simulated;
  r.approximate = report.approximate;
  r.source = source_;
  set_text(r.pfa_version, pfa_version());
  r.status = static_cast<int32_t>(e.status);
  set_text(r.detail, std::string_view(report.detail.data(),
                                      strnlen(report.detail.data(), report.detail.size())));
}

void StoreObserver::on_execution(const Execution& execution) noexcept {
  ExecutionRecord record;
  fill_record(execution, record);
  writer_->enqueue(record);
}

}  // namespace pfa::store

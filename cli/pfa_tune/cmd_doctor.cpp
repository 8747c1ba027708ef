// pfa-tune doctor: what pfa sees on this machine (CPU, GPUs, LibTorch, plugins, the store and its
// models) and a concrete fix for every problem found. Exit status 3 when it finds one.
#include "context.h"
#include "store_inspection.h"

#include <pfa/learner/model_store.h>
#include <pfa/problem.h>
#include <pfa/store/schema.h>

#include <CLI/CLI.hpp>
#include <dlpack/dlpack.h>
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

namespace pfa::tune {

namespace {

struct Finding {
  std::string problem;
  std::string fix;
};

struct CpuInfo {
  std::string model = "unknown";
  std::vector<std::string> isa;  // the flags that matter to attention kernels
};

CpuInfo read_cpu() {
  static const std::set<std::string> kInteresting = {
      "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_bf16",
      "avx512_fp16", "avx512_vnni", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "asimd",
      "sve", "sve2", "bf16"};
  CpuInfo out;
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  bool have_flags = false;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    key.erase(key.find_last_not_of(" \t") + 1);
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "model name" && out.model == "unknown") out.model = value;
    if ((key == "flags" || key == "Features") && !have_flags) {
      have_flags = true;
      std::istringstream words(value);
      std::string w;
      while (words >> w) {
        if (kInteresting.count(w)) out.isa.push_back(w);
      }
    }
  }
  return out;
}

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  return fmt::format("{:.1f} {}", v, units[u]);
}

std::string human_age(double seconds) {
  if (seconds < 120) return fmt::format("{:.0f} s", seconds);
  if (seconds < 7200) return fmt::format("{:.0f} min", seconds / 60);
  if (seconds < 172800) return fmt::format("{:.0f} h", seconds / 3600);
  return fmt::format("{:.0f} days", seconds / 86400);
}

void run_doctor(Context& context) {
  std::vector<Finding> problems;
  std::vector<std::string> notes;
  nlohmann::json out;

  const CpuInfo cpu = read_cpu();
  out["cpu"] = {{"model", cpu.model}, {"isa", cpu.isa}};

  // Plugins, and through them the GPUs and LibTorch: pfa-tune itself links neither CUDA nor torch.
  const auto engine = context.make_engine();
  out["plugins"] = nlohmann::json::array();
  out["gpus"] = nlohmann::json::array();
  out["libtorch"] = nullptr;
  std::set<std::string> gpu_names;
  for (const auto& p : engine->plugins()) {
    nlohmann::json row = {{"name", p->name()}, {"version", p->version()},
                          {"path", p->path().string()}, {"devices", p->device_types_text()},
                          {"loaded", true}};
    if (p->serves_device_type(kDLCUDA)) {
      Problem probe = make_problem(1, 8, 8, 256, 256, 64, PFA_DTYPE_FP16, false);
      probe.device_type = kDLCUDA;
      std::string why;
      const bool ok = p->supports(probe, &why);
      nlohmann::json gpu = {{"plugin", p->name()}, {"usable", ok}};
      try {
        const DeviceDescription d = p->device_info(kDLCUDA, 0);
        gpu["name"] = d.name;
        gpu["detail"] = d.detail;  // compute capability, driver and runtime versions
      } catch (const std::exception& e) {
        gpu["error"] = e.what();
      }
      if (!ok) gpu["reason"] = why;
      row["cuda"] = gpu;
      out["gpus"].push_back(gpu);
      if (!ok) notes.push_back(fmt::format("{} serves CUDA but not on this machine: {}", p->name(), why));
    }
    if (p->name() == "torch_sdpa") {
      std::string version = p->description();
      try {
        version = p->device_info(kDLCPU, 0).detail;  // starts with the LibTorch version
      } catch (const std::exception&) {
      }
      out["libtorch"] = version;
    }
    out["plugins"].push_back(std::move(row));
  }
  out["load_errors"] = nlohmann::json::array();
  for (const auto& e : engine->load_errors()) {
    out["load_errors"].push_back({{"path", e.path.string()}, {"error", e.message}});
    problems.push_back({fmt::format("plugin {} did not load: {}", e.path.string(), e.message),
                        fmt::format("rebuild it against this pfa (same ABI major version), or move "
                                    "{} out of the plugin folders", e.path.filename().string())});
  }
  if (engine->plugins().empty()) {
    problems.push_back({"no backend plugin loaded: nothing can run attention",
                        "put pfa_plugin_*.so next to libpfa, list their folder in "
                        "PFA_PLUGIN_PATH, or pass --plugins FOLDER"});
  }
  if (out["libtorch"].is_null()) {
    notes.push_back("torch_sdpa is not loaded: no LibTorch baseline (build with LibTorch to get it)");
  }

  // The store, read without creating, migrating or writing anything.
  const auto path = context.resolved_store_path();
  const StoreInspection s = inspect_store(path);
  nlohmann::json store = {{"path", path.string()}, {"exists", s.exists}};
  if (!s.exists) {
    problems.push_back({fmt::format("no store at {}", path.string()),
                        "record runs with `pfa-tune bench --grid ...` (creates it), or name an "
                        "existing one with --store"});
  } else {
    store["bytes"] = s.bytes;
    store["schema_version"] = s.schema_version;
    store["integrity"] = s.integrity;
    store["records"] = s.records;
    store["failed_records"] = s.failed_records;
    if (!s.open_error.empty()) {
      problems.push_back({fmt::format("{} cannot be read: {}", path.string(), s.open_error),
                          "move the file away (it is not an SQLite database or is damaged) and "
                          "re-record with `pfa-tune bench`, or name another with --store"});
    } else if (!s.pfa_store) {
      problems.push_back({fmt::format("{} is an SQLite database but not a pfa store", path.string()),
                          "name the pfa store with --store, or move this file away"});
    } else if (s.schema_version > store::kSchemaVersion) {
      problems.push_back({fmt::format("its schema version {} is newer than this pfa knows ({})",
                                      s.schema_version, store::kSchemaVersion),
                          "use the newer pfa that wrote it, or name another store with --store"});
    } else if (s.integrity != "ok") {
      problems.push_back({fmt::format("integrity check failed: {}", s.integrity),
                          fmt::format("salvage it with `sqlite3 {} .recover | sqlite3 recovered.db`, "
                                      "then use --store recovered.db", path.string())});
    } else {
      if (s.schema_version < store::kSchemaVersion) {
        notes.push_back(fmt::format("schema version {} is migrated to {} the next time a command "
                                    "writes to the store", s.schema_version, store::kSchemaVersion));
      }
      if (s.records == 0) {
        problems.push_back({"the store holds no runs: routing rests on plugin estimates",
                            "record runs with `pfa-tune bench --grid ...`, then `pfa-tune train`"});
      }
    }
  }
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  store["active_models"] = nlohmann::json::array();
  bool latency_model = false;
  for (const auto& m : s.active_models) {
    const double age_s = static_cast<double>(now_us - m.created_us) * 1e-6;
    const int64_t newer = s.max_record_id - m.max_record_id;
    store["active_models"].push_back({{"id", m.id}, {"kind", m.kind}, {"age_s", age_s},
                                      {"trained_on_records", m.trained_on_records},
                                      {"records_since", newer}});
    if (m.kind == learner::model_kind(Objective::latency)) latency_model = true;
    if (newer > 0 && newer >= m.trained_on_records) {
      notes.push_back(fmt::format("the {} model saw {} runs; {} more arrived since: `pfa-tune "
                                  "train` may route better", m.kind, m.trained_on_records, newer));
    }
  }
  if (s.exists && s.records > 0 && s.open_error.empty() && s.pfa_store && !latency_model) {
    problems.push_back({"no active latency model: routing rests on plugin estimates",
                        "run `pfa-tune train`"});
  }
  out["store"] = store;
  out["problems"] = nlohmann::json::array();
  for (const auto& f : problems) out["problems"].push_back({{"problem", f.problem}, {"fix", f.fix}});
  out["notes"] = notes;

  if (context.json) {
    context.print_json(out);
  } else {
    fmt::print("cpu       {}\nisa       {}\n", cpu.model, fmt::join(cpu.isa, " "));
    for (const auto& g : out["gpus"]) {
      fmt::print("gpu       via {}: {} {}{}\n", g["plugin"].get<std::string>(),
                 g.value("name", std::string("?")), g.value("detail", std::string()),
                 g["usable"].get<bool>() ? "" : " (not usable: " + g.value("reason", std::string()) + ")");
    }
    if (out["gpus"].empty()) fmt::print("gpu       no loaded plugin serves CUDA\n");
    fmt::print("libtorch  {}\n", out["libtorch"].is_null() ? "not loaded"
                                                            : out["libtorch"].get<std::string>());
    for (const auto& p : engine->plugins()) {
      fmt::print("plugin    {} {} ({}) {}\n", p->name(), p->version(), p->device_types_text(),
                 p->path().string());
    }
    for (const auto& e : engine->load_errors()) fmt::print("plugin    NOT LOADED {}\n", e.message);
    fmt::print("store     {}\n", path.string());
    if (s.exists && s.open_error.empty()) {
      fmt::print("          schema {}, {}, integrity {}, {} runs ({} failed)\n", s.schema_version,
                 human_bytes(s.bytes), s.integrity, s.records, s.failed_records);
    }
    for (const auto& m : store["active_models"]) {
      fmt::print("model     {} #{}: {} old, trained on {} runs, {} runs since\n",
                 m["kind"].get<std::string>(), m["id"].get<int64_t>(),
                 human_age(m["age_s"].get<double>()), m["trained_on_records"].get<int64_t>(),
                 m["records_since"].get<int64_t>());
    }
    for (const auto& n : notes) fmt::print("note      {}\n", n);
    if (problems.empty()) fmt::print("\nno problems found\n");
    for (const auto& f : problems) fmt::print("\nPROBLEM   {}\nfix       {}\n", f.problem, f.fix);
  }
  if (!problems.empty()) context.exit_code = 3;
}

}  // namespace

void add_doctor_command(CLI::App& app, Context& context) {
  auto* cmd = app.add_subcommand(
      "doctor", "Check what pfa sees (CPU, GPUs, LibTorch, plugins, the store, its models) and "
                "give a fix for every problem; exit status 3 when there is one. Reads the store "
                "without changing it.\nExample: pfa-tune doctor --store runs.db");
  cmd->callback([&context] { run_doctor(context); });
}

}  // namespace pfa::tune

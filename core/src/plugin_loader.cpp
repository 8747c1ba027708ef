#include <pfa/error.h>
#include <pfa/plugin_loader.h>

#include <boost/dll/shared_library.hpp>
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <system_error>

namespace pfa {

namespace fs = std::filesystem;

fs::path library_directory() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<const void*>(&library_directory), &info) == 0 ||
      info.dli_fname == nullptr) {
    return {};
  }
  std::error_code ec;
  fs::path file = fs::canonical(info.dli_fname, ec);
  return ec ? fs::path(info.dli_fname).parent_path() : file.parent_path();
}

std::vector<fs::path> plugin_search_paths(const PluginSearch& search) {
  std::vector<fs::path> paths;
  if (search.default_paths) {
    const fs::path here = library_directory();
    if (!here.empty()) {
      paths.push_back(here);
      paths.push_back(here / "pfa" / "plugins");
    }
    if (const char* env = std::getenv("PFA_PLUGIN_PATH"); env != nullptr) {
      std::string_view rest(env);
      while (!rest.empty()) {
        const size_t colon = rest.find(':');
        const std::string_view entry = rest.substr(0, colon);
        if (!entry.empty()) paths.emplace_back(std::string(entry));
        if (colon == std::string_view::npos) break;
        rest.remove_prefix(colon + 1);
      }
    }
  }
  for (const auto& p : search.paths) paths.push_back(p);
  std::vector<fs::path> unique;
  std::set<fs::path> seen;
  for (const auto& p : paths) {
    std::error_code ec;
    const fs::path key = fs::weakly_canonical(p, ec);
    if (seen.insert(ec ? p : key).second) unique.push_back(p);
  }
  return unique;
}

std::unique_ptr<Plugin> load_plugin(const fs::path& file) {
  auto library = std::make_shared<boost::dll::shared_library>();
  try {
    library->load(file, boost::dll::load_mode::rtld_local | boost::dll::load_mode::rtld_now);
  } catch (const std::exception& e) {
    const char* why = dlerror();
    throw Error(ErrorCode::plugin_load,
                fmt::format("{}: not a loadable shared library ({})", file.string(),
                            why ? why : e.what()));
  }
  // Keep the code mapped until the process exits, even after the engine lets the plugin go:
  // a plugin may leave worker threads (oneTBB, OpenMP) or thread-local destructors behind that run
  // its code at exit, and unmapping it under them crashes the host.
  if (void* pinned = dlopen(file.c_str(), RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE)) dlclose(pinned);
  if (!library->has(PFA_PLUGIN_ENTRY_SYMBOL)) {
    throw Error(ErrorCode::plugin_load,
                fmt::format("{}: not a pfa plugin (no '{}' symbol)", file.string(),
                            PFA_PLUGIN_ENTRY_SYMBOL));
  }
  auto& entry = library->get<std::remove_pointer_t<pfa_plugin_entry_fn>>(PFA_PLUGIN_ENTRY_SYMBOL);
  const pfa_host_info host{sizeof(pfa_host_info), PFA_ABI_VERSION_MAJOR, PFA_ABI_VERSION_MINOR,
                           PFA_VERSION_STRING};
  const pfa_plugin_api* api = nullptr;
  char message[512] = {0};
  pfa_status status = PFA_STATUS_INTERNAL;
  try {
    status = entry(&host, &api, message, sizeof message);
  } catch (const std::exception& e) {
    std::snprintf(message, sizeof message, "its entry threw a C++ exception: %s", e.what());
  } catch (...) {
    std::snprintf(message, sizeof message, "its entry threw an unknown exception");
  }
  if (status != PFA_STATUS_OK || api == nullptr) {
    throw Error(ErrorCode::plugin_load,
                fmt::format("{}: the plugin refused to load: {}", file.string(),
                            message[0] ? message : "no message"));
  }
  if (api->struct_size < offsetof(pfa_plugin_api, extensions) || api->abi_major != PFA_ABI_VERSION_MAJOR) {
    throw Error(ErrorCode::plugin_load,
                fmt::format("{}: plugin ABI {}.{} does not match this pfa's ABI {}.{}; rebuild the "
                            "plugin against this pfa's plugin_abi.h",
                            file.string(), api->abi_major, api->abi_minor, PFA_ABI_VERSION_MAJOR,
                            PFA_ABI_VERSION_MINOR));
  }
  if (api->name == nullptr || api->name[0] == '\0' || api->create == nullptr ||
      api->supports == nullptr || api->run == nullptr) {
    throw Error(ErrorCode::plugin_load,
                fmt::format("{}: the plugin's function table is incomplete (name, create, supports "
                            "and run are required)", file.string()));
  }
  return std::make_unique<Plugin>(std::shared_ptr<void>(library, library.get()), api, file);
}

std::string plugin_file_insecurity(const fs::path& file) {
  struct stat st {};
  const fs::path folder = fs::absolute(file).parent_path();
  for (const fs::path& path : {file, folder}) {
    if (::stat(path.c_str(), &st) != 0) continue;
    const bool is_folder = path == folder;
    if ((st.st_mode & S_IWOTH) && !(is_folder && (st.st_mode & S_ISVTX))) {
      return fmt::format("{} is writable by every user", path.string());
    }
    if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
      return fmt::format("{} belongs to another user (uid {})", path.string(), st.st_uid);
    }
    if ((st.st_mode & S_IWGRP) && st.st_gid != ::getegid() && st.st_uid != 0) {
      return fmt::format("{} is writable by a group this process is not in", path.string());
    }
  }
  return {};
}

namespace {

bool looks_like_plugin(const fs::path& file) {
  const std::string name = file.filename().string();
  return name.starts_with("pfa_plugin_") && file.extension() == ".so";
}

}  // namespace

PluginSet load_plugins(const PluginSearch& search) {
  PluginSet set;
  std::vector<fs::path> files;
  for (const auto& path : plugin_search_paths(search)) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<fs::path> found;
      for (const auto& entry : fs::directory_iterator(path, ec)) {
        if (entry.is_regular_file(ec) && looks_like_plugin(entry.path())) found.push_back(entry.path());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::exists(path, ec)) {
      files.push_back(path);
    } else if (std::find(search.paths.begin(), search.paths.end(), path) != search.paths.end()) {
      set.errors.push_back({path, path.string() + ": no such file or directory"});
    }
  }
  const char* allow_env = std::getenv("PFA_ALLOW_INSECURE_PLUGINS");
  const bool allow_insecure =
      search.allow_insecure || (allow_env != nullptr && std::string_view(allow_env) == "1");
  std::set<fs::path> loaded_files;
  for (const auto& file : files) {
    std::error_code ec;
    const fs::path canonical = fs::weakly_canonical(file, ec);
    if (!loaded_files.insert(ec ? file : canonical).second) continue;
    try {
      if (!allow_insecure) {
        if (const std::string why = plugin_file_insecurity(file); !why.empty()) {
          set.errors.push_back({file, fmt::format("{}: refused: {}; fix its permissions, or set "
                                                  "PFA_ALLOW_INSECURE_PLUGINS=1 to load it anyway",
                                                  file.string(), why)});
          continue;
        }
      }
      auto plugin = load_plugin(file);
      const auto same = std::find_if(set.plugins.begin(), set.plugins.end(),
                                     [&](const auto& p) { return p->name() == plugin->name(); });
      if (same != set.plugins.end()) {
        set.errors.push_back({file, fmt::format("a plugin named '{}' is already loaded from {}",
                                                plugin->name(), (*same)->path().string())});
        continue;
      }
      set.plugins.push_back(std::move(plugin));
    } catch (const Error& e) {
      set.errors.push_back({file, e.what()});
    } catch (const std::exception& e) {
      set.errors.push_back({file, fmt::format("{}: {}", file.string(), e.what())});
    }
  }
  return set;
}

}  // namespace pfa

// Finds and loads backend plugins. A file that is not a usable plugin gets one diagnostic naming
// the file and the cause; the others load regardless.
#pragma once

#include <pfa/plugin.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace pfa {

struct PluginLoadError {
  std::filesystem::path path;
  std::string message;
};

struct PluginSet {
  std::vector<std::unique_ptr<Plugin>> plugins;
  std::vector<PluginLoadError> errors;
};

struct PluginSearch {
  // Directories (every pfa_plugin_*.so inside) or files (loaded whatever their name).
  std::vector<std::filesystem::path> paths;
  // Also search the folder that holds libpfa (and its pfa/plugins/ subfolder) and every entry of
  // PFA_PLUGIN_PATH (colon-separated directories or files).
  bool default_paths = true;
  // A plugin file, or the folder holding it, that users other than its owner may write could be
  // swapped for hostile code; such files are refused (as the dynamic loader refuses them for
  // privileged programs) unless this is set or PFA_ALLOW_INSECURE_PLUGINS=1.
  bool allow_insecure = false;
};

// Why `file` may not be trusted (writable by others, or owned by another non-root user); empty
// when it may.
std::string plugin_file_insecurity(const std::filesystem::path& file);

// The folder that holds the loaded libpfa shared library.
std::filesystem::path library_directory();

// Every path the search would scan, in order, with duplicates removed.
std::vector<std::filesystem::path> plugin_search_paths(const PluginSearch& search);

// Loads one file as a plugin; throws pfa::Error(plugin_load) with the cause.
std::unique_ptr<Plugin> load_plugin(const std::filesystem::path& file);

// Loads everything the search finds. Plugins keep the order they were found in; a second plugin
// with a name already loaded is refused with a diagnostic.
PluginSet load_plugins(const PluginSearch& search);

}  // namespace pfa

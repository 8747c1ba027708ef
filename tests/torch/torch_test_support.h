// Shared by the torch tests: an engine that loads exactly the built torch_sdpa plugin.
#pragma once

#include <pfa/engine.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

namespace pfa::test {

inline std::filesystem::path torch_plugin_file() {
  const char* dir = std::getenv("PFA_BUILD_LIB_DIR");
  return std::filesystem::path(dir != nullptr ? dir : ".") / "pfa_plugin_torch_sdpa.so";
}

// Only the torch_sdpa plugin, nothing from PFA_PLUGIN_PATH or beside libpfa: these tests are about
// this backend and must not depend on the others building or loading.
inline std::unique_ptr<Engine> make_torch_engine() {
  EngineOptions options;
  options.plugins.paths = {torch_plugin_file()};
  options.plugins.default_paths = false;
  auto engine = std::make_unique<Engine>(std::move(options));
  for (const auto& e : engine->load_errors()) {
    ADD_FAILURE() << "plugin load error: " << e.path << ": " << e.message;
  }
  return engine;
}

}  // namespace pfa::test

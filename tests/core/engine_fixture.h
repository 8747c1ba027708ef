// Builds engines over the small test plugins in PFA_TEST_PLUGIN_DIR/<folder>.
#pragma once

#include <pfa/engine.h>

#include <string>

namespace pfa::test {

inline EngineOptions test_plugins(const std::string& folder) {
  EngineOptions options;
  options.plugins.paths = {std::string(PFA_TEST_PLUGIN_DIR) + "/" + folder};
  options.plugins.default_paths = false;
  return options;
}

}  // namespace pfa::test

// The loader loads every good plugin and gives one clear diagnostic for each bad file.
#include "engine_fixture.h"

#include <pfa/engine.h>
#include <pfa/plugin_loader.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace pfa {
namespace {

namespace fs = std::filesystem;

// What the loader says of a plugin one major version ahead of this host (minor numbers alike).
std::string fmt_abi_mismatch() {
  return "ABI " + std::to_string(PFA_ABI_VERSION_MAJOR + 1) + "." +
         std::to_string(PFA_ABI_VERSION_MINOR) + " does not match";
}

std::string error_for(const PluginSet& set, const std::string& file_fragment) {
  for (const auto& e : set.errors) {
    if (e.path.filename().string().find(file_fragment) != std::string::npos) return e.message;
  }
  return "";
}

TEST(Loader, LoadsTheGoodAndNamesTheCauseForEachBadFile) {
  const fs::path dir = fs::temp_directory_path() / ("pfa_loader_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const auto& entry : fs::directory_iterator(std::string(PFA_TEST_PLUGIN_DIR) + "/bad")) {
    fs::copy_file(entry.path(), dir / entry.path().filename(), fs::copy_options::overwrite_existing);
  }
  std::ofstream(dir / "pfa_plugin_garbage.so") << "this is not an ELF file\n";
  std::ofstream(dir / "README.txt") << "ignored: not named like a plugin\n";

  PluginSearch search;
  search.paths = {dir, dir / "missing_folder"};
  search.default_paths = false;
  const PluginSet set = load_plugins(search);

  ASSERT_EQ(set.plugins.size(), 1u);
  EXPECT_EQ(set.plugins[0]->name(), "survivor");
  EXPECT_NE(error_for(set, "garbage").find("not a loadable shared library"), std::string::npos)
      << error_for(set, "garbage");
  EXPECT_NE(error_for(set, "no_entry").find("pfa_plugin_entry"), std::string::npos);
  EXPECT_NE(error_for(set, "wrong_abi").find(fmt_abi_mismatch()), std::string::npos)
      << error_for(set, "wrong_abi");
  EXPECT_NE(error_for(set, "init_fails").find("refuses to initialise"), std::string::npos);
  EXPECT_NE(error_for(set, "refuses").find("refuses this host"), std::string::npos);
  EXPECT_NE(error_for(set, "missing_folder").find("no such file"), std::string::npos);
  for (const auto& e : set.errors) {
    EXPECT_NE(e.message.find(e.path.filename().string()), std::string::npos)
        << "the message names its file: " << e.message;
  }
  EXPECT_EQ(set.errors.size(), 6u);
  fs::remove_all(dir);
}

TEST(Loader, HonoursPfaPluginPathAndRefusesDuplicateNames) {
  const std::string good = std::string(PFA_TEST_PLUGIN_DIR) + "/good";
  ::setenv("PFA_PLUGIN_PATH", (good + ":" + good + "/pfa_plugin_fast_exact.so").c_str(), 1);
  PluginSearch search;  // default paths: next to libpfa, then PFA_PLUGIN_PATH
  const auto paths = plugin_search_paths(search);
  EXPECT_NE(std::find(paths.begin(), paths.end(), fs::path(good)), paths.end());
  search.paths = {std::string(PFA_TEST_PLUGIN_DIR) + "/failing/pfa_plugin_fallback.so"};
  const PluginSet set = load_plugins(search);
  ::unsetenv("PFA_PLUGIN_PATH");
  std::vector<std::string> names;
  for (const auto& p : set.plugins) names.push_back(p->name());
  EXPECT_NE(std::find(names.begin(), names.end(), "fast_exact"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "slow_exact"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "fallback"), names.end());
  EXPECT_EQ(std::count(names.begin(), names.end(), "fast_exact"), 1);
}

TEST(Loader, RefusesAPluginOthersCanWriteUnlessAllowed) {
  const fs::path dir = fs::temp_directory_path() / ("pfa_insecure_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path file = dir / "pfa_plugin_fast_exact.so";
  fs::copy_file(std::string(PFA_TEST_PLUGIN_DIR) + "/good/pfa_plugin_fast_exact.so", file);
  PluginSearch search;
  search.paths = {dir};
  search.default_paths = false;
  EXPECT_EQ(load_plugins(search).plugins.size(), 1u);
  fs::permissions(file, fs::perms::others_write, fs::perm_options::add);
  PluginSet refused = load_plugins(search);
  EXPECT_TRUE(refused.plugins.empty());
  ASSERT_EQ(refused.errors.size(), 1u);
  EXPECT_NE(refused.errors[0].message.find("writable by every user"), std::string::npos)
      << refused.errors[0].message;
  fs::permissions(file, fs::perms::others_write, fs::perm_options::remove);
  fs::permissions(dir, fs::perms::others_write, fs::perm_options::add);
  EXPECT_TRUE(load_plugins(search).plugins.empty()) << "a world-writable folder";
  search.allow_insecure = true;
  EXPECT_EQ(load_plugins(search).plugins.size(), 1u);
  fs::remove_all(dir);
}

TEST(Loader, ReportsPluginProperties) {
  Engine engine(test::test_plugins("good"));
  ASSERT_EQ(engine.plugins().size(), 3u);
  const Plugin* p = engine.find_plugin("picky");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->version(), "0.0.1");
  EXPECT_EQ(p->abi_major(), PFA_ABI_VERSION_MAJOR);
  EXPECT_EQ(p->device_types_text(), "cpu");
  EXPECT_FALSE(p->approximate());
  EXPECT_FALSE(p->simulated());
  EXPECT_EQ(p->device_info(kDLCPU, 0).name, "test cpu");
  EXPECT_TRUE(engine.load_errors().empty());
}

}  // namespace
}  // namespace pfa

// pfa-tune report opened in headless Chromium: it renders every section without console errors,
// needs no network, and leaves a screenshot beside the test binary.
#include "tune_support.h"

#include <pfa/learner/model_store.h>

#include <cstdlib>

namespace pfa::tune::testing {
namespace {

std::string find_chromium() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    for (const char* name : {"chromium", "chromium-browser"}) {
      const auto candidate = std::filesystem::path(dir) / name;
      if (access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
  }
  return {};
}

// Runs a shell command, returning its exit status; stdout and stderr go to the files named.
int shell(const std::string& command) {
  const int raw = std::system(command.c_str());
  return WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
}

TEST(PfaTuneReport, RendersInHeadlessChromiumWithoutErrors) {
  TempDir dir;
  const auto path = dir / "runs.db";
  {
    store::Store s(path);
    s.insert(realistic_records(std::random_device{}()));
    learner::StoreTrainOptions options;
    options.train.holdout_fraction = 0.3;
    options.train.fit.min_rows_per_backend = 2;
    options.force = true;
    options.train.include_foreign = true;  // "Test CPU" is not this machine
    learner::train_from_store(s, options);
    s.insert(realistic_records(std::random_device{}()));  // more runs, then a retrain
    learner::train_from_store(s, options);
  }
  const auto out = dir / "report";
  const auto r = run_tune({"--store", path.string(), "report", "--out", out.string()}, dir);
  ASSERT_EQ(r.status, 0) << r.err;
  const auto html_path = out / "index.html";
  const std::string html = read_file(html_path);
  ASSERT_FALSE(html.empty());
  // Self-contained: nothing to fetch.
  for (const char* external : {"<script", "<link", "src=", "@import", "url(http"}) {
    EXPECT_EQ(html.find(external), std::string::npos) << external;
  }
  EXPECT_NE(html.find("modelled"), std::string::npos);

  const std::string chromium = find_chromium();
  if (chromium.empty()) {
    GTEST_SKIP() << "chromium is not installed (Debian package `chromium`): the HTML was "
                    "checked, not rendered";
  }
  const auto profile = dir / "profile";
  std::filesystem::create_directories(profile);
  const std::string flags = " --headless --no-sandbox --disable-gpu --no-first-run "
                            "--disable-background-networking --disable-component-update "
                            "--disable-sync --enable-logging=stderr --v=0 --user-data-dir=" +
                            quote(profile.string());
  const std::string url = quote("file://" + html_path.string());
  const auto dom = dir / "dom.html", dom_err = dir / "dom.err";
  ASSERT_EQ(shell("timeout 120 " + quote(chromium) + flags + " --dump-dom " + url + " >" +
                  quote(dom.string()) + " 2>" + quote(dom_err.string())), 0)
      << read_file(dom_err);
  const std::string rendered = read_file(dom);
  for (const char* id : {"id=\"summary\"", "id=\"latency-d64\"", "id=\"latency-d128\"",
                         "id=\"routing-map\"", "id=\"oracle\"", "id=\"energy\"",
                         "id=\"failures\"", "scratch allocation failed", "cpu_flash",
                         "torch_sdpa", "(modelled)"}) {
    EXPECT_NE(rendered.find(id), std::string::npos) << id;
  }
  EXPECT_NE(rendered.find("<svg"), std::string::npos);

  const auto shot = std::filesystem::path(PFA_TEST_OUTPUT_DIR) / "pfa_tune_report.png";
  std::filesystem::remove(shot);
  const auto shot_err = dir / "shot.err";
  ASSERT_EQ(shell("timeout 120 " + quote(chromium) + flags + " --window-size=1400,2200 "
                  "--screenshot=" + quote(shot.string()) + " " + url + " >/dev/null 2>" +
                  quote(shot_err.string())), 0)
      << read_file(shot_err);
  EXPECT_GT(std::filesystem::file_size(shot), 10000u);
  for (const auto& log : {read_file(dom_err), read_file(shot_err)}) {
    EXPECT_EQ(log.find("Uncaught"), std::string::npos) << log;
    EXPECT_EQ(log.find("ERROR:CONSOLE"), std::string::npos) << log;
    EXPECT_EQ(log.find(":CONSOLE("), std::string::npos) << log;  // any console message at all
  }
}

TEST(PfaTuneReport, BadInputRefused) {
  TempDir dir;
  const auto path = dir / "runs.db";
  { store::Store s(path); s.insert(realistic_records(5)); }
  const std::string before = read_file(path);
  std::ofstream(dir / "afile") << "x";
  for (const auto& args : {std::vector<std::string>{"--store", path.string(), "report"},
                           std::vector<std::string>{"--store", path.string(), "report", "--out",
                                                    (dir / "afile").string()},
                           std::vector<std::string>{"--store", (dir / "none.db").string(),
                                                    "report", "--out", (dir / "r").string()}}) {
    const auto r = run_tune(args, dir);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_FALSE(r.err.empty());
  }
  EXPECT_EQ(read_file(path), before);
  EXPECT_FALSE(std::filesystem::exists(dir / "none.db"));
  EXPECT_FALSE(std::filesystem::exists(dir / "r"));
}

}  // namespace
}  // namespace pfa::tune::testing

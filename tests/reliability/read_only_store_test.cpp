// A store file the process may not write: the engine keeps serving correct answers, says once
// what is wrong, and counts every record it could not keep; the file is left exactly as it was.
#include "attention_case.h"
#include "read_only_support.h"

#include <pfa/engine.h>
#include <pfa/store/store.h>
#include <pfa/store/store_observer.h>

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace pfa {
namespace {

namespace fs = std::filesystem;

std::string bytes_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ReadOnlyStore, EngineServesSaysOnceAndCountsWhatItCouldNotRecord) {
  const fs::path dir = fs::temp_directory_path() / ("pfa_read_only_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path path = dir / "pfa.db";
  std::mt19937_64 rng(test::fresh_seed());
  int64_t stored_before = 0;
  {
    // A real store with real records in it, written while it was still writable.
    EngineOptions options;
    options.plugins.paths = {std::string(PFA_TEST_PLUGIN_DIR) + "/good"};
    options.plugins.default_paths = false;
    options.observer = std::make_shared<store::StoreObserver>(path);
    Engine engine(options);
    for (int i = 0; i < 20; ++i) {
      auto c = test::make_case(make_problem(1, 2, 1, 3 + i % 5, 8, 16, PFA_DTYPE_FP32, i % 2),
                               PFA_LAYOUT_BSHD, rng);
      engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), c.options());
    }
  }
  stored_before = store::Store(path).count();
  ASSERT_GT(stored_before, 0);
  const std::string before = bytes_of(path);
  test::make_read_only(path);
  struct Restore {
    fs::path file;
    ~Restore() {
      test::make_writable(file);
      std::error_code ec;
      fs::remove_all(file.parent_path(), ec);
    }
  } restore{path};
  if (!test::writes_are_refused(path)) {
    GTEST_SKIP() << "cannot make " << path << " unwritable here: not root (to drop to uid "
                 << test::kUnprivilegedId << ") and the mode bits do not stop this user";
  }

  // The serving part runs in a child process without write access; it reports through a pipe.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const uint64_t seed = rng();
  const int status = test::run_unprivileged([&]() -> int {
    ::close(fds[0]);
    int said = 0;
    std::string message;
    store::AsyncWriterOptions writer;
    writer.on_first_failure = [&](const std::string& m) {
      ++said;
      message = m;
    };
    writer.interval = std::chrono::milliseconds(5);
    writer.batch_size = 16;  // several batches, each of which must fail and be counted
    std::shared_ptr<store::StoreObserver> recorder;
    try {
      recorder = std::make_shared<store::StoreObserver>(path, writer);
    } catch (const std::exception& e) {
      dprintf(fds[1], "observer threw: %s\n", e.what());
      return 3;
    }
    EngineOptions options;
    options.plugins.paths = {std::string(PFA_TEST_PLUGIN_DIR) + "/good"};
    options.plugins.default_paths = false;
    options.observer = recorder;
    Engine engine(options);
    std::mt19937_64 child_rng(seed);
    int calls = 0, wrong = 0;
    for (int i = 0; i < 200; ++i) {
      auto c = test::make_case(make_problem(1, 2, 1, 3 + i % 5, 8, 16, PFA_DTYPE_FP32, i % 2),
                               PFA_LAYOUT_BSHD, child_rng);
      engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), c.options());
      ++calls;
      if (!(test::relative_error(c, test::reference_attention(c)) < 1e-4)) ++wrong;
    }
    auto& w = recorder->writer();
    w.flush();
    dprintf(fds[1], "%d %d %llu %llu %llu %d\n%s\n", calls, wrong,
            static_cast<unsigned long long>(w.written()),
            static_cast<unsigned long long>(w.failed()),
            static_cast<unsigned long long>(w.dropped()), said, message.c_str());
    return 0;
  });
  ::close(fds[1]);
  std::string report;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) report.append(buffer, n);
  ::close(fds[0]);
  ASSERT_EQ(status, 0) << "the child failed (99: could not drop root): " << report;

  std::istringstream in(report);
  int calls = -1, wrong = -1, said = -1;
  unsigned long long written = 1, failed = 0, dropped = 0;
  in >> calls >> wrong >> written >> failed >> dropped >> said;
  std::string message;
  std::getline(in >> std::ws, message);
  EXPECT_EQ(calls, 200) << report;
  EXPECT_EQ(wrong, 0) << "calls must go on with correct answers";
  EXPECT_EQ(written, 0u);
  EXPECT_EQ(failed + dropped, static_cast<unsigned long long>(calls))
      << "every call's record is counted as failed or dropped: " << report;
  EXPECT_GT(failed, 0u);
  EXPECT_EQ(said, 1) << "the problem is said once, not per batch: " << report;
  EXPECT_NE(message.find("read-only"), std::string::npos) << message;
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;

  test::make_writable(path);
  EXPECT_EQ(bytes_of(path), before) << "the read-only store file was changed";
  EXPECT_EQ(store::Store(path).count(), stored_before);
}

}  // namespace
}  // namespace pfa

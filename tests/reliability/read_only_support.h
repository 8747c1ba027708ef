// Running a piece of a test as a user who may not write a file. Root writes through any mode bits,
// so when the test runs as root the child process drops to an unprivileged uid (nobody, 65534)
// before it runs; as a normal user the read-only mode bits alone already stop writes.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

namespace pfa::test {

inline constexpr uid_t kUnprivilegedId = 65534;  // nobody / nogroup

// Makes `file` and its folder read-only for everyone but root (0444 and 0555). The folder too:
// SQLite would otherwise create its journal files beside the store.
inline void make_read_only(const std::filesystem::path& file) {
  ::chmod(file.c_str(), 0444);
  ::chmod(file.parent_path().c_str(), 0555);
}

inline void make_writable(const std::filesystem::path& file) {
  ::chmod(file.parent_path().c_str(), 0755);
  ::chmod(file.c_str(), 0644);
}

// Forks; the child drops root (if it has it) and returns body()'s value as its exit status.
// Returns the child's exit status (99: it could not drop root), or -1 when it did not exit
// normally.
inline int run_unprivileged(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (::geteuid() == 0) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(kUnprivilegedId) != 0 ||
          ::setuid(kUnprivilegedId) != 0) {
        std::_Exit(99);
      }
    }
    std::_Exit(body());
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Whether this process (or, as root, its unprivileged child) really cannot open `file` for
// writing: the check that the setup above works here.
inline bool writes_are_refused(const std::filesystem::path& file) {
  return run_unprivileged([&] {
           const int fd = ::open(file.c_str(), O_WRONLY);
           if (fd >= 0) {
             ::close(fd);
             return 1;
           }
           return 0;
         }) == 0;
}

}  // namespace pfa::test

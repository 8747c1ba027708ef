// pfa::conformance: checks any plugin file against the plugin ABI's contract without GoogleTest,
// for `pfa-tune conformance` and for vendors' own CI. Correctness against an fp64 reference on
// random problems the plugin says it serves, a reason for every refusal, refused calls that leave
// the output alone, concurrent calls when the plugin declares itself thread-safe, and ABI version
// negotiation in both directions.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace pfa::conformance {

enum class Outcome {
  pass,
  fail,
  warn,  // not a contract violation today, but one once the ABI grows (see the detail)
  skip   // does not apply to this plugin, or could not run here
};

const char* outcome_name(Outcome outcome) noexcept;

struct CheckResult {
  std::string name;
  Outcome outcome = Outcome::pass;
  std::string detail;
  double seconds = 0;
};

struct Options {
  int cases = 24;      // random problems the plugin serves, checked against the reference
  int threads = 4;     // threads for the concurrency check
  uint64_t seed = 0;   // 0: a fresh seed (printed in the report so that a failure can be replayed)
};

struct Report {
  std::filesystem::path plugin_file;
  std::string name, version, abi;  // empty when the plugin did not load
  uint64_t seed = 0;
  std::vector<CheckResult> checks;
  // No check failed; warnings count as failures when `strict`. Skips never do.
  bool passed(bool strict = false) const;
};

// Runs every check against one plugin file. Never throws for a misbehaving plugin: what goes
// wrong is a failed check. (A plugin that crashes the process takes the process with it.)
Report check_plugin(const std::filesystem::path& plugin_file, const Options& options = {});

}  // namespace pfa::conformance

// Fuzz target: the tuning database reader behind `pfa-tune import` and `merge`, fed through a real
// file as pfa-tune reads it. Whatever it accepts must survive a write and a re-read unchanged.
#include "../../cli/pfa_tune/tuning_file.h"

#include <pfa/error.h>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/pfa_fuzz_tuning_" + std::to_string(::getpid()) + ".pfatune";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  std::vector<pfa::store::ExecutionRecord> records;
  try {
    records = pfa::tune::read_tuning_file(path);
  } catch (const pfa::Error&) {
    return 0;
  }
  // Accepted: export it again and read it back; every record keeps its content hash.
  const std::string again = path + ".again";
  pfa::tune::write_tuning_file(again, records);
  const auto back = pfa::tune::read_tuning_file(again);
  if (back.size() != records.size()) std::abort();
  for (size_t i = 0; i < records.size(); ++i) {
    bool found = false;
    for (const auto& r : back) found |= pfa::tune::content_hash(r) == pfa::tune::content_hash(records[i]);
    if (!found) std::abort();
  }
  return 0;
}

// Fuzz target: the shapes CSV reader, fed through a real file as pfa-tune reads it.
#include "../../cli/common/shapes.h"

#include <pfa/error.h>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/pfa_fuzz_shapes_" + std::to_string(::getpid()) + ".csv";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    const auto problems = pfa::cli::read_shapes_file(path);
    for (const auto& p : problems) (void)pfa::to_string(p);
  } catch (const pfa::Error&) {
  }
  return 0;
}

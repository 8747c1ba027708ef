// Fuzz target: the shape string parser. Any input either parses, and then writes back to a string
// that parses to the same problem, or fails with pfa::Error — never a crash or undefined behaviour.
#include <pfa/error.h>
#include <pfa/problem.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const pfa::Problem p = pfa::parse_problem(text);
    const pfa::Problem again = pfa::parse_problem(pfa::to_string(p));
    if (pfa::to_string(again) != pfa::to_string(p)) std::abort();
    (void)pfa::attention_flops(p);
  } catch (const pfa::Error&) {
  }
  return 0;
}

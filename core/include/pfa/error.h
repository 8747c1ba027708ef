// pfa::Error: what went wrong and what to do about it, with a code a program can switch on.
#pragma once

#include <stdexcept>
#include <string>

namespace pfa {

enum class ErrorCode {
  invalid_argument,  // the caller's tensors or options break a rule; nothing was written
  unsupported,       // no loaded backend serves this problem
  backend_failure,   // every backend that was tried failed; messages say why
  plugin_load,       // a plugin could not be loaded
  store,             // the execution store could not be opened or written
  model,             // the routing model could not be trained, saved or loaded
  io,                // a file could not be read or written
  internal
};

const char* error_code_name(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace pfa

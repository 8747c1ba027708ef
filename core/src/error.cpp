#include <pfa/error.h>

namespace pfa {

const char* error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::backend_failure: return "backend_failure";
    case ErrorCode::plugin_load: return "plugin_load";
    case ErrorCode::store: return "store";
    case ErrorCode::model: return "model";
    case ErrorCode::io: return "io";
    case ErrorCode::internal: return "internal";
  }
  return "unknown";
}

}  // namespace pfa

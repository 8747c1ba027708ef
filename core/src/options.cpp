#include <pfa/error.h>
#include <pfa/options.h>

namespace pfa {

const char* objective_name(Objective objective) noexcept {
  switch (objective) {
    case Objective::latency: return "latency";
    case Objective::energy: return "energy";
    case Objective::energy_delay: return "energy_delay";
  }
  return "unknown";
}

Objective parse_objective(const std::string& text) {
  if (text == "latency") return Objective::latency;
  if (text == "energy") return Objective::energy;
  if (text == "energy_delay" || text == "edp") return Objective::energy_delay;
  throw Error(ErrorCode::invalid_argument,
              "unknown objective '" + text + "': use latency, energy or energy_delay");
}

}  // namespace pfa

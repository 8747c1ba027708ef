// Ranking candidates by predicted cost with ties inside the noise band broken by name, so that one
// problem gets one backend in every process even when two predictions differ by noise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pfa::learner {

// Measurement noise on a quiet machine is a few percent; predictions closer than this are a tie.
inline constexpr double kDefaultTieBand = 0.03;

// Sorts `order[0..count)` (indexes into `cost` and `name`) best first: every candidate whose cost is
// within (1 + tie_band) of the cheapest forms the leading group, ordered by name; the rest follow
// by cost, then by name. Non-finite costs go last. Allocates nothing.
void rank_by_cost(uint16_t* order, size_t count, const double* cost, const std::string_view* name,
                  double tie_band) noexcept;

}  // namespace pfa::learner

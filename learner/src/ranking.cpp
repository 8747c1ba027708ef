#include <pfa/learner/ranking.h>

#include <algorithm>
#include <cmath>

namespace pfa::learner {

void rank_by_cost(uint16_t* order, size_t count, const double* cost, const std::string_view* name,
                  double tie_band) noexcept {
  if (count == 0) return;
  auto key = [&](uint16_t i) { return std::isfinite(cost[i]) ? cost[i] : HUGE_VAL; };
  std::sort(order, order + count, [&](uint16_t a, uint16_t b) {
    if (key(a) != key(b)) return key(a) < key(b);
    return name[a] < name[b];
  });
  const double best = key(order[0]);
  if (!std::isfinite(best)) return;
  const double limit = best * (1.0 + tie_band);
  size_t tied = 1;
  while (tied < count && key(order[tied]) <= limit) ++tied;
  std::sort(order, order + tied, [&](uint16_t a, uint16_t b) { return name[a] < name[b]; });
}

}  // namespace pfa::learner

// An in-process stand-in for a communicator, for tests of split problems on machines without GPUs:
// the ranks are threads of one process, and a rank "receives" a visiting key/value shard by reading
// it where its owner published it. The ring's plan and merge are the real ones
// (pfa/sequence_sharding.h); only the transport differs from NCCL's.
#pragma once

#include <barrier>
#include <vector>

namespace pfa::test {

struct CpuRingGroup {
  explicit CpuRingGroup(int ranks)
      : ranks(ranks), k(static_cast<size_t>(ranks)), v(static_cast<size_t>(ranks)), sync(ranks) {}
  const int ranks;
  std::vector<const void*> k, v;  // each rank's published shard, valid between the two barriers
  std::barrier<> sync;
};

// What a rank hands to the engine as its communicator.
struct CpuRingMember {
  CpuRingGroup* group = nullptr;
  int rank = 0;
};

}  // namespace pfa::test

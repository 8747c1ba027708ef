// Split problems on one machine without GPUs: the mirrored-chunk layout and the ring plan
// (pfa/sequence_sharding.h), the log-sum-exp merge, and the engine serving a split problem through
// a CPU ring of threads, checked against fp64 attention over the whole sequence.
#include <pfa/engine.h>
#include <pfa/sequence_sharding.h>

#include "attention_case.h"
#include "cpu_ring_group.h"
#include "engine_fixture.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

namespace pfa {
namespace {

using sharding::global_row;
using sharding::ring_step;

// Every visible (query, key) pair of the whole sequence is computed by exactly one step of one
// rank, and with a causal mask every rank computes the same number of pairs.
TEST(Sharding, RingPlanCoversEveryVisiblePairOnceAndBalancesCausalWork) {
  for (int ranks = 1; ranks <= 5; ++ranks) {
    for (bool causal : {false, true}) {
      const int64_t c = 3, shard = 2 * c, L = shard * ranks;
      std::vector<int> seen(static_cast<size_t>(L * L), 0);
      std::vector<int64_t> work(static_cast<size_t>(ranks), 0);
      for (int r = 0; r < ranks; ++r) {
        for (int step = 0; step < ranks; ++step) {
          const auto s = ring_step(ranks, r, step, shard, shard, causal);
          EXPECT_EQ(s.source, ((r - step) % ranks + ranks) % ranks);
          for (int64_t i = s.q_begin; i < s.q_begin + s.q_rows; ++i) {
            for (int64_t j = s.kv_begin; j < s.kv_begin + s.kv_rows; ++j) {
              if (s.causal && j - s.kv_begin > i - s.q_begin) continue;
              const int64_t gi = global_row(ranks, r, shard, i);
              const int64_t gj = global_row(ranks, s.source, shard, j);
              ++seen[static_cast<size_t>(gi * L + gj)];
              ++work[static_cast<size_t>(r)];
            }
          }
        }
      }
      for (int64_t gi = 0; gi < L; ++gi) {
        for (int64_t gj = 0; gj < L; ++gj) {
          const int expected = !causal || gj <= gi ? 1 : 0;
          ASSERT_EQ(seen[static_cast<size_t>(gi * L + gj)], expected)
              << "ranks " << ranks << " causal " << causal << " pair " << gi << "," << gj;
        }
      }
      for (int r = 1; r < ranks; ++r) EXPECT_EQ(work[static_cast<size_t>(r)], work[0]);
      // The problem's FLOPs are one rank's share of the whole.
      Problem p = make_problem(1, 1, 1, shard, shard, 1, PFA_DTYPE_FP32, causal);
      p.ranks = ranks;
      EXPECT_DOUBLE_EQ(visible_pairs(p), static_cast<double>(work[0]));
    }
  }
}

TEST(Sharding, GlobalRowsOfAllRanksTileTheSequence) {
  const int ranks = 4;
  const int64_t shard = 10;
  std::vector<int> hit(static_cast<size_t>(shard * ranks), 0);
  for (int r = 0; r < ranks; ++r)
    for (int64_t i = 0; i < shard; ++i) ++hit[static_cast<size_t>(global_row(ranks, r, shard, i))];
  for (int h : hit) EXPECT_EQ(h, 1);
  EXPECT_EQ(global_row(ranks, 0, shard, 5), 35);  // rank 0's second chunk is the last one
  EXPECT_TRUE(sharding::can_split(40, 4));
  EXPECT_FALSE(sharding::can_split(36, 4));
}

TEST(Sharding, MergingPartialSoftmaxesEqualsTheWhole) {
  std::mt19937_64 rng(test::fresh_seed());
  std::uniform_real_distribution<double> u(-3, 3);
  const int n = 37, D = 5;
  std::vector<double> s(n), v(static_cast<size_t>(n * D));
  for (auto& x : s) x = u(rng);
  for (auto& x : v) x = u(rng);
  auto partial = [&](int begin, int end, double* out) {  // returns the LSE of keys [begin, end)
    double m = -INFINITY, sum = 0;
    for (int j = begin; j < end; ++j) m = std::max(m, s[j]);
    for (int d = 0; d < D; ++d) out[d] = 0;
    for (int j = begin; j < end; ++j) {
      const double w = std::exp(s[j] - m);
      sum += w;
      for (int d = 0; d < D; ++d) out[d] += w * v[static_cast<size_t>(j * D + d)];
    }
    for (int d = 0; d < D; ++d) out[d] /= sum;
    return m + std::log(sum);
  };
  double whole[D], acc[D], part[D];
  const double whole_lse = partial(0, n, whole);
  double acc_lse = -std::numeric_limits<double>::infinity();
  for (int d = 0; d < D; ++d) acc[d] = std::nan("");  // an empty accumulator is never read
  for (auto [b, e] : {std::pair{10, 25}, std::pair{0, 10}, std::pair{25, 37}}) {
    const double lse = partial(b, e, part);
    sharding::merge_row(acc, acc_lse, part, lse, D);
  }
  const double empty[D] = {1e300, 1e300, 1e300, 1e300, 1e300};
  sharding::merge_row(acc, acc_lse, empty, -std::numeric_limits<double>::infinity(), D);
  EXPECT_NEAR(acc_lse, whole_lse, 1e-12);
  for (int d = 0; d < D; ++d) EXPECT_NEAR(acc[d], whole[d], 1e-12);
}

TEST(Sharding, EngineServesASplitProblemThroughARingOfThreads) {
  Engine engine(test::test_plugins("ring"));
  std::mt19937_64 rng(test::fresh_seed());
  for (int ranks : {2, 3}) {
    for (bool causal : {false, true}) {
      for (auto dtype : {PFA_DTYPE_FP32, PFA_DTYPE_BF16}) {
        Problem whole = make_problem(2, 4, 2, 12 * ranks, 12 * ranks, 16, dtype, causal);
        whole.want_lse = 1;
        auto c = test::make_case(whole, PFA_LAYOUT_BSHD, rng);
        SCOPED_TRACE(test::describe(c) + " ranks " + std::to_string(ranks));
        const auto ref = test::reference_attention(c);

        test::CpuRingGroup group(ranks);
        std::vector<test::HostTensor> q, k, v, out, lse;
        for (int r = 0; r < ranks; ++r) {
          q.push_back(test::mirrored_shard(c.q, ranks, r));
          k.push_back(test::mirrored_shard(c.k, ranks, r));
          v.push_back(test::mirrored_shard(c.v, ranks, r));
          out.emplace_back(dtype, q.back().shape());
          out.back().poison();
          lse.emplace_back(PFA_DTYPE_FP32, std::vector<int64_t>{2, 4, 12});
          lse.back().poison();
        }
        std::vector<Report> reports(static_cast<size_t>(ranks));
        std::vector<std::string> errors(static_cast<size_t>(ranks));
        std::vector<std::thread> threads;
        for (int r = 0; r < ranks; ++r) {
          threads.emplace_back([&, r] {
            test::CpuRingMember member{&group, r};
            AttentionOptions o = c.options();
            o.lse = &lse[static_cast<size_t>(r)].dl();
            o.ranks = ranks;
            o.communicator = &member;
            try {
              reports[static_cast<size_t>(r)] = engine.attention(
                  q[static_cast<size_t>(r)].dl(), k[static_cast<size_t>(r)].dl(),
                  v[static_cast<size_t>(r)].dl(), out[static_cast<size_t>(r)].dl(), o);
            } catch (const std::exception& e) {
              errors[static_cast<size_t>(r)] = e.what();
            }
          });
        }
        for (auto& t : threads) t.join();

        double diff2 = 0, ref2 = 0, lse_err = 0;
        for (int r = 0; r < ranks; ++r) {
          ASSERT_EQ(errors[static_cast<size_t>(r)], "");
          EXPECT_EQ(reports[static_cast<size_t>(r)].backend, "cpu_ring");
          EXPECT_EQ(out[static_cast<size_t>(r)].count_non_finite(), 0);
          for (int64_t b = 0; b < 2; ++b)
            for (int64_t i = 0; i < 12; ++i) {
              const int64_t g = global_row(ranks, r, 12, i);
              for (int64_t h = 0; h < 4; ++h) {
                for (int64_t d = 0; d < 16; ++d) {
                  const double want = ref.out[static_cast<size_t>(((b * whole.seqlen_q + g) * 4 + h) * 16 + d)];
                  const double got = out[static_cast<size_t>(r)].get(b, i, h, d);
                  diff2 += (got - want) * (got - want);
                  ref2 += want * want;
                }
                const double want_lse = ref.lse[static_cast<size_t>((b * 4 + h) * whole.seqlen_q + g)];
                lse_err = std::max(lse_err, std::abs(lse[static_cast<size_t>(r)].get(b, h, i) - want_lse));
              }
            }
        }
        EXPECT_LT(std::sqrt(diff2 / ref2), test::tolerance(dtype));
        EXPECT_LT(lse_err, 1e-4);
      }
    }
  }
}

TEST(Sharding, EngineRefusesSplitProblemsItCannotServe) {
  Engine engine(test::test_plugins("ring"));
  Problem p = make_problem(1, 2, 2, 8, 8, 16, PFA_DTYPE_FP32, true);
  p.ranks = 2;
  // A one-device backend is no candidate for a split problem, and says why.
  const Explanation e = engine.explain(p, RoutingPolicy{});
  EXPECT_EQ(e.chosen, "cpu_ring");
  bool saw_exclusion = false;
  for (const auto& c : e.candidates) {
    if (c.backend == "fast_exact") {
      saw_exclusion = !c.eligible && c.reason.find("one device") != std::string::npos;
    }
  }
  EXPECT_TRUE(saw_exclusion);

  std::mt19937_64 rng(test::fresh_seed());
  auto c = test::make_case(make_problem(1, 2, 2, 7, 7, 16, PFA_DTYPE_FP32, true), PFA_LAYOUT_BSHD, rng);
  test::CpuRingGroup group(2);
  test::CpuRingMember member{&group, 0};
  AttentionOptions o = c.options();
  o.ranks = 2;
  auto expect_refusal = [&](const char* words) {
    try {
      engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), o);
      ADD_FAILURE() << "accepted a call it should refuse (" << words << ")";
    } catch (const Error& err) {
      EXPECT_EQ(err.code(), ErrorCode::invalid_argument);
      EXPECT_NE(std::string(err.what()).find(words), std::string::npos) << err.what();
    }
    EXPECT_EQ(c.out.count_non_finite(), c.out.numel());  // nothing written
  };
  expect_refusal("communicator");  // split without a communicator
  o.communicator = &member;
  expect_refusal("even");          // causal shards hold two equal chunks
  o.backend = "fast_exact";
  o.causal = false;
  try {
    engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), o);
    ADD_FAILURE() << "a one-device backend was forced onto a split problem";
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::unsupported);
  }
}

TEST(Sharding, ProblemTextCarriesRanks) {
  Problem p = parse_problem("batch=1,heads=8,seqlen=4096,head_dim=128,dtype=bf16,causal=1,ranks=4");
  EXPECT_EQ(ranks_of(p), 4);
  EXPECT_EQ(parse_problem(to_string(p)).ranks, 4);
  EXPECT_EQ(global_problem(p).seqlen_q, 4096 * 4);
  EXPECT_EQ(ranks_of(parse_problem("batch=1,heads=8,seqlen=64,head_dim=64")), 1);
  EXPECT_THROW(parse_problem("batch=1,heads=8,seqlen=64,head_dim=64,ranks=0"), Error);
}

}  // namespace
}  // namespace pfa

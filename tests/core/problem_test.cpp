#include <pfa/error.h>
#include <pfa/problem.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace pfa {
namespace {

TEST(Problem, ParsesTheShapeFormatAndWritesItBack) {
  const Problem p = parse_problem(
      "batch=2,heads_q=16,heads_kv=4,seqlen_q=4096,seqlen_k=1024,head_dim=128,dtype=bf16,causal=1");
  EXPECT_EQ(p.batch, 2);
  EXPECT_EQ(p.heads_q, 16);
  EXPECT_EQ(p.heads_kv, 4);
  EXPECT_EQ(p.seqlen_q, 4096);
  EXPECT_EQ(p.seqlen_k, 1024);
  EXPECT_EQ(p.head_dim, 128);
  EXPECT_EQ(p.dtype, PFA_DTYPE_BF16);
  EXPECT_EQ(p.causal, 1);
  EXPECT_FLOAT_EQ(p.softmax_scale, 1.0f / std::sqrt(128.0f));
  const Problem again = parse_problem(to_string(p));
  EXPECT_EQ(to_string(again), to_string(p));
}

TEST(Problem, DefaultsKeyHeadsAndLengthToTheQuerySide) {
  const Problem p = parse_problem("batch=1,heads_q=8,seqlen_q=77,head_dim=40");
  EXPECT_EQ(p.heads_kv, 8);
  EXPECT_EQ(p.seqlen_k, 77);
  EXPECT_EQ(p.dtype, PFA_DTYPE_FP32);
}

TEST(Problem, RejectsBadShapesWithTheFieldNamed) {
  const char* bad[] = {"batch=0,heads_q=8,seqlen_q=7,head_dim=4",
                       "batch=1,heads_q=8,heads_kv=3,seqlen_q=7,head_dim=4",
                       "batch=1,heads_q=8,seqlen_q=x,head_dim=4",
                       "batch=1,heads_q=8,seqlen_q=7,head_dim=4,dtype=int8",
                       "batch=1,heads_q=8,seqlen_q=7,head_dim=4,colour=red",
                       "batch=1,heads_q=8,seqlen_q,head_dim=4"};
  for (const char* text : bad) {
    try {
      parse_problem(text);
      ADD_FAILURE() << "accepted " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << text;
      EXPECT_GT(std::string(e.what()).size(), 10u) << text;
    }
  }
}

TEST(Problem, CausalFlopsCountOnlyVisiblePairs) {
  for (auto [lq, lk] : {std::pair{1, 1}, {17, 17}, {5, 9}, {9, 5}, {1000, 333}, {5000, 7000}}) {
    Problem p = make_problem(1, 1, 1, lq, lk, 1, PFA_DTYPE_FP32, true);
    double brute = 0;
    for (int i = 0; i < lq; ++i) brute += std::clamp(i + lk - lq + 1, 0, lk);
    EXPECT_DOUBLE_EQ(visible_pairs(p), brute) << lq << "x" << lk;
    p.causal = 0;
    EXPECT_DOUBLE_EQ(visible_pairs(p), double(lq) * lk);
  }
  const Problem p = make_problem(2, 16, 16, 4096, 4096, 128, PFA_DTYPE_BF16, false);
  EXPECT_DOUBLE_EQ(attention_flops(p), 4.0 * 2 * 16 * 4096.0 * 4096 * 128);
}

}  // namespace
}  // namespace pfa

// Every kind of bad call must meet a pfa::Error that says what was wrong, and leave out untouched.
#include "attention_case.h"
#include "engine_fixture.h"

#include <pfa/engine.h>

#include <gtest/gtest.h>

#include <functional>
#include <limits>

namespace pfa {
namespace {

struct BadCall {
  const char* name;
  const char* expected_words;  // a fragment the message must contain
  std::function<void(DLTensor& q, DLTensor& k, DLTensor& v, DLTensor& out, AttentionOptions& o,
                     std::vector<int64_t>& scratch)>
      mutate;
};

class Validation : public ::testing::Test {
 protected:
  Engine engine{test::test_plugins("good")};
};

TEST_F(Validation, RejectsEveryBadInputAndWritesNothing) {
  std::mt19937_64 rng(test::fresh_seed());
  const BadCall cases[] = {
      {"head_dim mismatch", "head_dim",
       [](auto&, DLTensor& k, DLTensor& v, auto&, auto&, auto& s) {
         s = {k.shape[0], k.shape[1], k.shape[2], k.shape[3] - 1};
         k.shape = v.shape = s.data();
         k.strides = v.strides = nullptr;
       }},
      {"k and v differ", "same shape",
       [](auto&, auto&, DLTensor& v, auto&, auto&, auto& s) {
         s = {v.shape[0], v.shape[1] - 1, v.shape[2], v.shape[3]};
         v.shape = s.data();
       }},
      {"out shape", "out",
       [](auto&, auto&, auto&, DLTensor& out, auto&, auto& s) {
         s = {out.shape[0], out.shape[1] - 1, out.shape[2], out.shape[3]};
         out.shape = s.data();
       }},
      {"dtype mismatch", "dtype", [](auto&, DLTensor& k, auto&, auto&, auto&, auto&) {
         k.dtype = DLDataType{kDLFloat, 16, 1};
       }},
      {"integer dtype", "dtype", [](DLTensor& q, auto&, auto&, auto&, auto&, auto&) {
         q.dtype = DLDataType{kDLInt, 32, 1};
       }},
      {"devices differ", "device", [](auto&, DLTensor& k, auto&, auto&, auto&, auto&) {
         k.device = DLDevice{kDLCUDA, 0};
       }},
      {"out aliases q", "overlaps", [](DLTensor& q, auto&, auto&, DLTensor& out, auto&, auto&) {
         out.data = q.data;
       }},
      {"out overlaps itself", "overlap",
       [](auto&, auto&, auto&, DLTensor& out, auto&, auto& s) {
         s = {0, 0, 0, 1};
         out.strides = s.data();
       }},
      {"head_dim stride", "unit stride",
       [](auto&, DLTensor& k, auto&, auto&, auto&, auto& s) {
         s = {k.shape[1] * k.shape[2] * k.shape[3], k.shape[2] * k.shape[3], 1, k.shape[2]};
         k.strides = s.data();
       }},
      {"empty sequence", "empty", [](DLTensor& q, auto&, auto&, auto&, auto&, auto& s) {
         s = {q.shape[0], 0, q.shape[2], q.shape[3]};
         q.shape = s.data();
       }},
      {"absurd size", "absurd", [](auto&, DLTensor& k, DLTensor& v, auto&, auto&, auto& s) {
         s = {k.shape[0], int64_t{1} << 40, k.shape[2], k.shape[3]};
         k.shape = v.shape = s.data();
         k.strides = v.strides = nullptr;
       }},
      {"heads not a multiple", "multiple",
       [](auto&, DLTensor& k, DLTensor& v, auto&, auto&, auto& s) {
         s = {k.shape[0], k.shape[1], 3, k.shape[3]};
         k.shape = v.shape = s.data();
         k.strides = v.strides = nullptr;
       }},
      {"three dimensions", "4 dimensions", [](DLTensor& q, auto&, auto&, auto&, auto&, auto&) {
         q.ndim = 3;
       }},
      {"null data", "null", [](auto&, auto&, DLTensor& v, auto&, auto&, auto&) {
         v.data = nullptr;
       }},
      {"batch mismatch", "batch",
       [](auto&, DLTensor& k, DLTensor& v, auto&, auto&, auto& s) {
         s = {k.shape[0] + 1, k.shape[1], k.shape[2], k.shape[3]};
         k.shape = v.shape = s.data();
         k.strides = v.strides = nullptr;
       }},
      {"infinite scale", "finite", [](auto&, auto&, auto&, auto&, AttentionOptions& o, auto&) {
         o.softmax_scale = std::numeric_limits<float>::infinity();
       }},
      {"unknown backend", "no backend named",
       [](auto&, auto&, auto&, auto&, AttentionOptions& o, auto&) { o.backend = "warp_drive"; }},
  };
  for (const auto& bad : cases) {
    SCOPED_TRACE(bad.name);
    Problem p = make_problem(2, 4, 2, 9, 11, 16, PFA_DTYPE_FP32, false);
    auto c = test::make_case(p, PFA_LAYOUT_BSHD, rng);
    DLTensor q = c.q.dl(), k = c.k.dl(), v = c.v.dl(), out = c.out.dl();
    AttentionOptions options = c.options();
    std::vector<int64_t> scratch;
    bad.mutate(q, k, v, out, options, scratch);
    try {
      engine.attention(q, k, v, out, options);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
      EXPECT_NE(std::string(e.what()).find(bad.expected_words), std::string::npos) << e.what();
    }
    EXPECT_EQ(c.out.count_non_finite(), c.out.numel()) << "out was written";
  }
}

TEST_F(Validation, RejectsABadLseTensor) {
  std::mt19937_64 rng(test::fresh_seed());
  Problem p = make_problem(1, 2, 2, 5, 5, 8, PFA_DTYPE_FP32, false);
  p.want_lse = 1;
  auto c = test::make_case(p, PFA_LAYOUT_BSHD, rng);
  test::HostTensor wrong(PFA_DTYPE_FP32, {1, 2, 4});
  AttentionOptions options = c.options();
  options.lse = &wrong.dl();
  EXPECT_THROW(engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), options), Error);
  EXPECT_EQ(c.out.count_non_finite(), c.out.numel());
}

TEST_F(Validation, DescribesLayoutsFromStrides) {
  std::mt19937_64 rng(test::fresh_seed());
  const Problem p = make_problem(2, 4, 4, 7, 7, 8, PFA_DTYPE_BF16, true);
  for (auto layout : {PFA_LAYOUT_BSHD, PFA_LAYOUT_BHSD}) {
    auto c = test::make_case(p, layout, rng);
    const Problem d = engine.describe(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), c.options());
    EXPECT_EQ(d.layout, layout);
    EXPECT_EQ(d.seqlen_q, 7);
    EXPECT_EQ(d.heads_q, 4);
    EXPECT_EQ(d.causal, 1);
    auto padded = test::make_case(p, layout, rng, true);
    EXPECT_EQ(engine.describe(padded.q.dl(), padded.k.dl(), padded.v.dl(), padded.out.dl(),
                              padded.options()).layout, PFA_LAYOUT_STRIDED);
  }
}

}  // namespace
}  // namespace pfa

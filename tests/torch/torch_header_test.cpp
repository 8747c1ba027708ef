// The optional at::Tensor header: both overloads, the LSE overload, non-contiguous views, and the
// errors it raises for tensors pfa does not take.
#include "attention_case.h"
#include "torch_test_support.h"

#include <pfa/torch.h>

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/ones.h>

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace pfa::test {
namespace {

at::ScalarType scalar_type_of(pfa_dtype dtype) {
  return dtype == PFA_DTYPE_FP32 ? at::kFloat : dtype == PFA_DTYPE_FP16 ? at::kHalf : at::kBFloat16;
}

// An at::Tensor over a HostTensor's memory (no copy).
at::Tensor as_tensor(HostTensor& t) {
  return at::from_blob(t.data(), t.shape(), t.strides(),
                       at::TensorOptions().dtype(scalar_type_of(t.dtype())));
}

// A copy of `t` in fresh memory whose logical [b, s, h, d] view is not contiguous: the storage is
// [b, h, s, d + 8] and the view narrows the last dimension and swaps heads and sequence.
at::Tensor strided_copy(const at::Tensor& t) {
  const auto n = t.sizes();
  at::Tensor storage = at::empty({n[0], n[2], n[1], n[3] + 8}, t.options());
  at::Tensor view = storage.narrow(3, 0, n[3]).transpose(1, 2);
  view.copy_(t);
  return view;
}

void expect_matches(AttentionCase& c, const Reference& ref, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(c.out.count_non_finite(), 0);
  const double error = relative_error(c, ref);
  EXPECT_LT(error, tolerance(static_cast<pfa_dtype>(c.problem.dtype))) << "relative error " << error;
}

TEST(TorchHeader, OverloadsMatchReference) {
  auto engine = make_torch_engine();
  ASSERT_NE(engine->find_plugin("torch_sdpa"), nullptr);
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("PFA_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (const pfa_dtype dtype : {PFA_DTYPE_FP32, PFA_DTYPE_BF16}) {
    for (const bool causal : {false, true}) {
      const Problem p = make_problem(2, 4, 2, 19, 11, 40, dtype, causal);
      AttentionCase c = make_case(p, PFA_LAYOUT_BSHD, rng);
      SCOPED_TRACE(describe(c));
      const Reference ref = reference_attention(c);
      AttentionOptions options;
      options.causal = causal;
      options.backend = "torch_sdpa";
      const at::Tensor q = as_tensor(c.q), k = as_tensor(c.k), v = as_tensor(c.v);
      at::Tensor out = as_tensor(c.out);

      // Into the caller's out.
      const Report report = pfa::attention(*engine, q, k, v, out, options);
      EXPECT_EQ(report.backend, "torch_sdpa");
      expect_matches(c, ref, "out overload");

      // Allocating overload: a new tensor shaped like q.
      c.out.poison();
      Report allocated_report;
      const at::Tensor fresh = pfa::attention(*engine, q, k, v, options, &allocated_report);
      EXPECT_EQ(fresh.sizes(), q.sizes());
      EXPECT_EQ(fresh.scalar_type(), q.scalar_type());
      EXPECT_EQ(allocated_report.backend, "torch_sdpa");
      out.copy_(fresh);
      expect_matches(c, ref, "allocating overload");

      // Non-contiguous views in, allocated out (dense, since the inputs are not).
      c.out.poison();
      const at::Tensor qs = strided_copy(q), ks = strided_copy(k), vs = strided_copy(v);
      ASSERT_FALSE(qs.is_contiguous());
      out.copy_(pfa::attention(*engine, qs, ks, vs, options));
      expect_matches(c, ref, "non-contiguous views");

      // Non-contiguous out, and the same memory read as BHSD.
      c.out.poison();
      at::Tensor out_view = strided_copy(out);
      pfa::attention(*engine, qs, ks, vs, out_view, options);
      out.copy_(out_view);
      expect_matches(c, ref, "non-contiguous out");

      c.out.poison();
      AttentionOptions bhsd = options;
      bhsd.layout = PFA_LAYOUT_BHSD;
      at::Tensor out_bhsd = pfa::attention(*engine, q.transpose(1, 2), k.transpose(1, 2),
                                           v.transpose(1, 2), bhsd);
      out.copy_(out_bhsd.transpose(1, 2));
      expect_matches(c, ref, "BHSD views");

      // The LSE overload.
      c.out.poison();
      c.lse.poison();
      at::Tensor lse = as_tensor(c.lse);
      const Report lse_report = pfa::attention(*engine, q, k, v, out, lse, options);
      EXPECT_EQ(std::string(lse_report.detail.data()), "math+lse");
      expect_matches(c, ref, "lse overload");
      c.problem.want_lse = 1;
      EXPECT_LT(lse_max_error(c, ref), 1e-3);
    }
  }
}

TEST(TorchHeader, RejectsTensorsPfaDoesNotTake) {
  auto engine = make_torch_engine();
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor q = at::ones({1, 4, 2, 32}, f32);
  const at::Tensor ints = at::ones({1, 4, 2, 32}, at::TensorOptions().dtype(at::kInt));
  at::Tensor out = at::empty({1, 4, 2, 32}, f32);

  AttentionOptions options;
  options.backend = "torch_sdpa";
  try {
    pfa::attention(*engine, q, ints, q, out, options);
    ADD_FAILURE() << "an int32 key was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("k has dtype"), std::string::npos) << e.what();
  }
  try {
    pfa::attention(*engine, q, at::Tensor(), q, out, options);
    ADD_FAILURE() << "an undefined key was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
  }
  // Shape errors come from the engine's validation, through the same path.
  at::Tensor short_out = at::empty({1, 3, 2, 32}, f32);
  try {
    pfa::attention(*engine, q, q, q, short_out, options);
    ADD_FAILURE() << "a mis-shaped out was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
  }
}

}  // namespace
}  // namespace pfa::test

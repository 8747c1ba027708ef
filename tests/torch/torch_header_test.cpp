// The optional at::Tensor header: both overloads, the LSE overload, non-contiguous views, and the
// errors it raises for tensors pfa does not take.
#include "attention_case.h"
#include "torch_test_support.h"

#include <pfa/torch.h>

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/ones.h>

#include <gtest/gtest.h>

#if defined(PFA_TORCH_CUDA)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <optional>
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

TEST(TorchHeader, OverloadsMatchReferenceAndRejectBadTensors) {
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

  // Tensors pfa does not take, refused before anything runs.
  {
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
}

// On a GPU (LibTorch with CUDA and a device): the plugin on CUDA tensors, on the default stream
// and on a side stream the caller passes, against the same fp64 reference.
TEST(TorchSdpaCuda, MatchesReferenceOnTheCallersStream) {
  auto engine = make_torch_engine();
  const Plugin* plugin = engine->find_plugin("torch_sdpa");
  ASSERT_NE(plugin, nullptr);
  Problem probe = make_problem(1, 2, 2, 16, 16, 64, PFA_DTYPE_BF16, false);
  probe.device_type = kDLCUDA;
  std::string reason;
  if (!plugin->supports(probe, &reason)) GTEST_SKIP() << "no CUDA here: " << reason;
#if defined(PFA_TORCH_CUDA)
  const DeviceDescription gpu = plugin->device_info(kDLCUDA, 0);
  EXPECT_FALSE(gpu.name.empty());
  std::printf("torch_sdpa on %s (%s)\n", gpu.name.c_str(), gpu.detail.c_str());
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("PFA_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const at::Device cuda(at::kCUDA, 0);
  struct Config { int64_t b, hq, hkv, lq, lk, d; bool causal, lse; };
  const Config configs[] = {
      {2, 8, 8, 128, 128, 64, false, false},  {1, 8, 2, 200, 77, 128, true, false},
      {1, 8, 2, 77, 200, 128, true, false},   {2, 4, 1, 17, 1000, 96, true, false},
      {1, 4, 4, 65, 65, 256, false, false},   {1, 8, 2, 100, 37, 72, true, true},
      {1, 4, 4, 37, 100, 40, true, true},
  };
  for (const pfa_dtype dtype : {PFA_DTYPE_FP32, PFA_DTYPE_FP16, PFA_DTYPE_BF16}) {
    for (const Config& k : configs) {
      // 0: the default stream; 1: a side stream passed in the options; 2: a side stream made
      // LibTorch's current one, which the header must pick up by itself.
      for (const int stream_mode : {0, 1, 2}) {
        const bool side_stream = stream_mode != 0;
        Problem p = make_problem(k.b, k.hq, k.hkv, k.lq, k.lk, k.d, dtype, k.causal);
        p.want_lse = k.lse ? 1 : 0;
        AttentionCase c = make_case(p, PFA_LAYOUT_BSHD, rng);
        SCOPED_TRACE(describe(c) + " stream mode " + std::to_string(stream_mode));
        const Reference ref = reference_attention(c);
        const at::Tensor q = as_tensor(c.q).to(cuda), kk = as_tensor(c.k).to(cuda),
                         v = as_tensor(c.v).to(cuda);
        at::Tensor out = as_tensor(c.out).to(cuda);  // poisoned, as on the host
        at::Tensor lse = as_tensor(c.lse).to(cuda);
        AttentionOptions options;
        options.causal = k.causal;
        options.backend = "torch_sdpa";
        const c10::cuda::CUDAStream stream =
            side_stream ? c10::cuda::getStreamFromPool() : c10::cuda::getDefaultCUDAStream();
        if (stream_mode == 1) options.stream = stream.stream();
        // Inputs were written on the default stream: order the side stream after them.
        c10::cuda::getDefaultCUDAStream().synchronize();
        Report report;
        {
          std::optional<c10::cuda::CUDAStreamGuard> current;
          if (stream_mode == 2) {
            current.emplace(stream);
            EXPECT_EQ(pfa::current_stream(cuda), static_cast<void*>(stream.stream()));
          }
          report = k.lse ? pfa::attention(*engine, q, kk, v, out, lse, options)
                         : pfa::attention(*engine, q, kk, v, out, options);
        }
        stream.synchronize();
        EXPECT_EQ(report.backend, "torch_sdpa");
        SCOPED_TRACE(std::string("path ") + report.detail.data());
        as_tensor(c.out).copy_(out);
        as_tensor(c.lse).copy_(lse);
        expect_matches(c, ref, "cuda");
        if (k.lse) EXPECT_LT(lse_max_error(c, ref), 1e-3);
      }
    }
  }
#endif
}

}  // namespace
}  // namespace pfa::test

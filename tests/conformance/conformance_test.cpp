// The conformance suite: the same tests for every plugin the build produced, through the engine
// with that plugin forced. Fresh random inputs, fp64 reference, poisoned outputs checked fully
// written, and a reason for every problem a plugin declines.
#include "attention_case.h"

#include <pfa/engine.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#ifdef PFA_TEST_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace pfa {
namespace {

namespace fs = std::filesystem;

std::string build_lib_dir() {
  const char* env = std::getenv("PFA_BUILD_LIB_DIR");
  return env && *env ? env : PFA_BUILD_LIB_DIR;
}

// Every plugin file the build produced, found at registration time.
std::vector<std::string> plugin_files() {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(build_lib_dir(), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("pfa_plugin_") && name.ends_with(".so")) files.push_back(name);
  }
  std::sort(files.begin(), files.end());
  return files;
}

struct Shape {
  const char* name;
  int64_t batch, heads_q, heads_kv, seqlen_q, seqlen_k, head_dim;
  bool causal, lse;
  pfa_layout layout;
  bool padded;
  float scale;  // 0: default
};

const Shape kShapes[] = {
    {"single_token", 1, 1, 1, 1, 1, 64, false, true, PFA_LAYOUT_BSHD, false, 0},
    {"l17_d40", 2, 4, 4, 17, 17, 40, false, false, PFA_LAYOUT_BSHD, false, 0},
    {"causal_lq_lt_lk_d72", 1, 2, 2, 17, 33, 72, true, true, PFA_LAYOUT_BSHD, false, 0},
    {"mqa_causal_lq_gt_lk_d96", 1, 4, 1, 33, 17, 96, true, true, PFA_LAYOUT_BHSD, false, 0},
    {"gqa4_causal_d128", 1, 8, 2, 128, 128, 128, true, true, PFA_LAYOUT_BSHD, false, 0},
    {"l1000_causal_d64", 1, 2, 2, 1000, 1000, 64, true, false, PFA_LAYOUT_BSHD, false, 0},
    {"cross_d256", 1, 2, 2, 100, 1000, 256, false, true, PFA_LAYOUT_BSHD, false, 0},
    {"bhsd_d128", 2, 2, 2, 64, 64, 128, false, false, PFA_LAYOUT_BHSD, false, 0},
    {"padded_d96_scale", 1, 3, 3, 50, 50, 96, false, true, PFA_LAYOUT_BSHD, true, 0.3f},
    {"l1000_d128", 1, 1, 1, 1000, 1000, 128, false, false, PFA_LAYOUT_BSHD, false, 0},
    {"gqa2_l257_d32", 1, 4, 2, 257, 257, 32, true, true, PFA_LAYOUT_BHSD, true, 0},
    {"decode_causal_d128", 2, 8, 8, 1, 1000, 128, true, true, PFA_LAYOUT_BSHD, false, 0},
};

struct Param {
  std::string plugin_file;
  size_t shape;
  pfa_dtype dtype;
};

// gtest prints a parameter on failure: name it instead of dumping its bytes.
void PrintTo(const Param& p, std::ostream* os) {
  *os << p.plugin_file << " " << kShapes[p.shape].name << " " << dtype_name(p.dtype);
}

std::vector<Param> all_params() {
  std::vector<Param> out;
  for (const auto& file : plugin_files())
    for (size_t s = 0; s < std::size(kShapes); ++s)
      for (auto dtype : {PFA_DTYPE_FP32, PFA_DTYPE_FP16, PFA_DTYPE_BF16})
        out.push_back({file, s, dtype});
  return out;
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  std::string plugin = info.param.plugin_file.substr(11);  // drop "pfa_plugin_"
  plugin = plugin.substr(0, plugin.size() - 3);             // drop ".so"
  return plugin + "_" + kShapes[info.param.shape].name + "_" + dtype_name(info.param.dtype);
}

EngineOptions only(const std::string& file) {
  EngineOptions options;
  options.plugins.paths = {build_lib_dir() + "/" + file};
  options.plugins.default_paths = false;
  return options;
}

bool cuda_device_present() {
#ifdef PFA_TEST_WITH_CUDA
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
#else
  return false;
#endif
}

// Without plugins the parameterised suites below would be empty and prove nothing.
TEST(ConformanceSetup, TheBuildProducedPlugins) {
  EXPECT_FALSE(plugin_files().empty()) << "no pfa_plugin_*.so in " << build_lib_dir();
}

class Conformance : public ::testing::TestWithParam<Param> {};
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Conformance);

TEST_P(Conformance, MatchesTheFp64Reference) {
  const Param& param = GetParam();
  Engine engine(only(param.plugin_file));
  ASSERT_TRUE(engine.load_errors().empty()) << engine.load_errors()[0].message;
  ASSERT_EQ(engine.plugins().size(), 1u);
  const Plugin& plugin = *engine.plugins()[0];

  const Shape& s = kShapes[param.shape];
  Problem problem = make_problem(s.batch, s.heads_q, s.heads_kv, s.seqlen_q, s.seqlen_k,
                                 s.head_dim, param.dtype, s.causal);
  problem.want_lse = s.lse;
  if (s.scale != 0) problem.softmax_scale = s.scale;
  problem.layout = s.padded ? PFA_LAYOUT_STRIDED : s.layout;

  bool on_gpu = false;
  if (!plugin.serves_device_type(kDLCPU)) {
    if (!plugin.serves_device_type(kDLCUDA)) GTEST_SKIP() << "serves neither CPU nor CUDA";
    if (!cuda_device_present()) {
      GTEST_SKIP() << plugin.name() << " serves CUDA tensors only and this machine has no CUDA "
                   << "device; it runs on a GPU machine";
    }
    on_gpu = true;
    problem.device_type = kDLCUDA;
  }
  std::string reason;
  if (!plugin.supports(problem, &reason)) {
    EXPECT_FALSE(reason.empty()) << "a declined problem needs a reason";
    GTEST_SKIP() << plugin.name() << " declines " << to_string(problem) << ": " << reason;
  }

  const uint64_t seed = test::fresh_seed();
  std::mt19937_64 rng(seed);
  auto c = test::make_case(problem, s.layout, rng, s.padded);
  SCOPED_TRACE(test::describe(c) + " seed " + std::to_string(seed));
  AttentionOptions options = c.options();
  options.backend = plugin.name();
  options.max_rel_error = 1.0;
  options.what_if = true;

  Report report;
#ifdef PFA_TEST_WITH_CUDA
  if (on_gpu) {
    // Same bytes on the device, run there, copy back.
    test::HostTensor* tensors[] = {&c.q, &c.k, &c.v, &c.out, &c.lse};
    void* device[5] = {};
    DLTensor views[5];
    for (int i = 0; i < 5; ++i) {
      ASSERT_EQ(cudaMalloc(&device[i], tensors[i]->storage_bytes()), cudaSuccess);
      ASSERT_EQ(cudaMemcpy(device[i], tensors[i]->data(), tensors[i]->storage_bytes(),
                           cudaMemcpyHostToDevice), cudaSuccess);
      views[i] = tensors[i]->dl();
      views[i].data = device[i];
      views[i].device = DLDevice{kDLCUDA, 0};
    }
    options.lse = problem.want_lse ? &views[4] : nullptr;
    report = engine.attention(views[0], views[1], views[2], views[3], options);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    for (int i = 3; i < 5; ++i) {
      EXPECT_EQ(cudaMemcpy(tensors[i]->data(), device[i], tensors[i]->storage_bytes(),
                           cudaMemcpyDeviceToHost), cudaSuccess);
    }
    for (void* p : device) cudaFree(p);
  }
#endif
  if (!on_gpu) report = engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), options);
  EXPECT_EQ(report.backend, plugin.name());

  EXPECT_EQ(c.out.count_non_finite(), 0) << "output not fully written (or not finite)";
  const auto ref = test::reference_attention(c);
  const double error = test::relative_error(c, ref);
  double limit = test::tolerance(param.dtype);
  if (plugin.approximate()) limit = std::max(limit, 3.0 * plugin.estimate(problem).rel_error);
  EXPECT_LT(error, limit) << plugin.name() << " relative error";
  if (problem.want_lse) {
    EXPECT_LT(test::lse_max_error(c, ref), plugin.approximate() ? 1.0 : 2e-3) << "lse";
  }
  RecordProperty("relative_error", std::to_string(error));
}

INSTANTIATE_TEST_SUITE_P(Plugins, Conformance, ::testing::ValuesIn(all_params()), param_name);

class PluginContract : public ::testing::TestWithParam<std::string> {};
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PluginContract);

TEST_P(PluginContract, DescribesItselfAndDeclinesWithAReason) {
  Engine engine(only(GetParam()));
  ASSERT_TRUE(engine.load_errors().empty()) << engine.load_errors()[0].message;
  ASSERT_EQ(engine.plugins().size(), 1u);
  const Plugin& plugin = *engine.plugins()[0];
  EXPECT_FALSE(plugin.name().empty());
  EXPECT_FALSE(plugin.version().empty());
  EXPECT_FALSE(plugin.description().empty());
  EXPECT_EQ(plugin.abi_major(), PFA_ABI_VERSION_MAJOR);
  EXPECT_FALSE(plugin.device_types_text().empty());
  // A device type nobody serves: a plugin must decline with a reason, never crash.
  Problem odd = make_problem(1, 1, 1, 8, 8, 64, PFA_DTYPE_FP32, false);
  odd.device_type = kDLVulkan;
  std::string reason;
  EXPECT_FALSE(plugin.supports(odd, &reason));
  EXPECT_FALSE(reason.empty());
  // Its estimate for a problem it serves is a positive, finite prior.
  Problem p = make_problem(1, 8, 8, 1024, 1024, 128, PFA_DTYPE_BF16, false);
  p.device_type = plugin.serves_device_type(kDLCPU) ? kDLCPU : kDLCUDA;
  if (plugin.supports(p)) {
    const pfa_estimate e = plugin.estimate(p);
    EXPECT_GT(e.latency_s, 0);
    EXPECT_TRUE(std::isfinite(e.latency_s));
  }
}

INSTANTIATE_TEST_SUITE_P(Plugins, PluginContract, ::testing::ValuesIn(plugin_files()),
                         [](const auto& info) {
                           std::string n = info.param.substr(11);
                           return n.substr(0, n.size() - 3);
                         });

}  // namespace
}  // namespace pfa

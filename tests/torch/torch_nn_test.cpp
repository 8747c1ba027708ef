// pfa::nn (pfa/torch_nn.h): the MultiheadAttention module against the stock one (same parameters,
// same outputs within fp32 tolerance of an fp64 stock reference, the engine serving what it can
// and the stock computation the rest, with the reason), and replace_attention on an encoder.
#include "attention_case.h"

#include <pfa/torch_nn.h>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/transformer.h>
#include <torch/nn/modules/transformercoder.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace pfa::test {
namespace {

namespace tnn = torch::nn;

// fp32 outputs against an fp64 reference: a few ulps of float accumulated over 64-wide dot
// products, softmax and layer norms.
constexpr double kFp32Tolerance = 2e-5;

// Only the cpu_flash plugin of this build: a real backend, nothing from the environment.
std::unique_ptr<Engine> make_cpu_engine() {
  const char* dir = std::getenv("PFA_BUILD_LIB_DIR");
  EngineOptions options;
  options.plugins.paths = {std::filesystem::path(dir != nullptr ? dir : ".") /
                           "pfa_plugin_cpu_flash.so"};
  options.plugins.default_paths = false;
  auto engine = std::make_unique<Engine>(std::move(options));
  for (const auto& e : engine->load_errors()) {
    ADD_FAILURE() << "plugin load error: " << e.path << ": " << e.message;
  }
  return engine;
}

// Seeds LibTorch's generator from a fresh seed, printed for replay (PFA_TEST_SEED=...).
uint64_t seed_torch() {
  const uint64_t seed = fresh_seed();
  torch::manual_seed(seed);
  return seed;
}

double relative_error(const torch::Tensor& out, const torch::Tensor& reference) {
  const torch::Tensor ref = reference.to(torch::kDouble);
  return ((out.to(torch::kDouble) - ref).norm() / ref.norm()).item<double>();
}

// Every parameter drawn afresh (the stock init leaves the biases at zero, which would hide a
// misplaced bias).
void randomize(tnn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) p.normal_(0.0, 0.2);
}

std::set<std::string> parameter_shapes(const tnn::Module& module) {
  std::set<std::string> names;
  for (const auto& item : module.named_parameters()) {
    names.insert(item.key() + " " + c10::str(item.value().sizes()));
  }
  return names;
}

// A double-precision copy of a module: the fp64 reference runs the stock computation on it.
template <typename Holder>
Holder fp64_copy(const Holder& module) {
  auto copy = std::dynamic_pointer_cast<typename Holder::ContainedType>(module->clone());
  copy->to(torch::kDouble);
  return Holder(copy);
}

TEST(TorchNn, ParametersHaveTheStockNamesAndShapes) {
  const std::vector<tnn::MultiheadAttentionOptions> cases = {
      tnn::MultiheadAttentionOptions(64, 4),
      tnn::MultiheadAttentionOptions(64, 4).bias(false),
      tnn::MultiheadAttentionOptions(48, 3).add_bias_kv(true).add_zero_attn(true),
      tnn::MultiheadAttentionOptions(32, 2).kdim(20).vdim(24),
  };
  for (const auto& options : cases) {
    tnn::MultiheadAttention stock(options);
    nn::MultiheadAttention ours(options);
    EXPECT_EQ(parameter_shapes(*stock), parameter_shapes(*ours));
    // A state_dict saved from one loads into the other.
    nn::detail::copy_state(*stock, *ours);
    for (const auto& item : stock->named_parameters()) {
      EXPECT_TRUE(torch::equal(item.value(), ours->named_parameters()[item.key()])) << item.key();
    }
  }
  tnn::TransformerEncoderLayer stock_layer(tnn::TransformerEncoderLayerOptions(64, 4));
  nn::TransformerEncoderLayer our_layer(tnn::TransformerEncoderLayerOptions(64, 4));
  EXPECT_EQ(parameter_shapes(*stock_layer), parameter_shapes(*our_layer));
}

struct MhaCase {
  const char* what;
  tnn::MultiheadAttentionOptions options;
  int64_t length, source_length, batch;
  bool self_attention;
  bool causal;
};

TEST(TorchNn, MultiheadAttentionThroughTheEngineMatchesStock) {
  auto engine = make_cpu_engine();
  ASSERT_NE(engine->find_plugin("cpu_flash"), nullptr);
  const uint64_t seed = seed_torch();
  SCOPED_TRACE("PFA_TEST_SEED=" + std::to_string(seed));
  const std::vector<MhaCase> cases = {
      {"self", tnn::MultiheadAttentionOptions(64, 4), 37, 37, 3, true, false},
      {"self causal", tnn::MultiheadAttentionOptions(64, 4), 29, 29, 2, true, true},
      {"cross", tnn::MultiheadAttentionOptions(64, 8), 11, 23, 2, false, false},
      {"no bias", tnn::MultiheadAttentionOptions(32, 2).bias(false), 17, 17, 2, true, false},
      {"bias_kv zero_attn", tnn::MultiheadAttentionOptions(48, 3).add_bias_kv(true).add_zero_attn(true),
       13, 19, 2, false, false},
      {"kdim vdim", tnn::MultiheadAttentionOptions(32, 4).kdim(20).vdim(20), 9, 15, 3, false, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    tnn::MultiheadAttention stock(c.options);
    randomize(*stock);
    stock->eval();
    nn::MultiheadAttention ours(c.options, *engine);
    nn::detail::copy_state(*stock, *ours);
    auto stock64 = fp64_copy(stock);

    const int64_t e = c.options.embed_dim();
    const torch::Tensor query = torch::randn({c.length, c.batch, e});
    const torch::Tensor key =
        c.self_attention ? query : torch::randn({c.source_length, c.batch, c.options.kdim()});
    const torch::Tensor value =
        c.self_attention ? query : torch::randn({c.source_length, c.batch, c.options.vdim()});
    torch::Tensor mask;
    if (c.causal) mask = tnn::TransformerImpl::generate_square_subsequent_mask(c.length);

    torch::NoGradGuard no_grad;
    const auto [out, weights] = ours->forward(query, key, value, {}, /*need_weights=*/false, mask);
    const auto& report = ours->last_report();
    EXPECT_TRUE(report.through_engine) << report.reason;
    EXPECT_EQ(report.backend, "cpu_flash");
    EXPECT_TRUE(report.reason.empty()) << report.reason;
    EXPECT_EQ(report.causal, c.causal);
    EXPECT_GT(report.latency_s, 0.0);
    EXPECT_EQ(ours->engine_calls(), 1);
    EXPECT_EQ(ours->fallback_calls(), 0);
    EXPECT_FALSE(weights.defined());

    const torch::Tensor reference = std::get<0>(stock64->forward(
        query.to(torch::kDouble), key.to(torch::kDouble), value.to(torch::kDouble), {}, false,
        mask.defined() ? mask.to(torch::kDouble) : mask));
    ASSERT_EQ(out.sizes(), reference.sizes());
    EXPECT_EQ(out.scalar_type(), torch::kFloat);
    EXPECT_LT(relative_error(out, reference), kFp32Tolerance);
    // The stock fp32 module is as far from the reference: the tolerance is fp32's, not loose.
    const torch::Tensor stock_out = std::get<0>(stock->forward(query, key, value, {}, false, mask));
    EXPECT_LT(relative_error(stock_out, reference), kFp32Tolerance);
  }
}

TEST(TorchNn, FallbackCasesRunTheStockComputationAndSayWhy) {
  auto engine = make_cpu_engine();
  const uint64_t seed = seed_torch();
  SCOPED_TRACE("PFA_TEST_SEED=" + std::to_string(seed));
  const int64_t length = 21, batch = 2, e = 64;
  tnn::MultiheadAttention stock(tnn::MultiheadAttentionOptions(e, 4).dropout(0.25));
  randomize(*stock);
  stock->eval();
  nn::MultiheadAttention ours(tnn::MultiheadAttentionOptions(e, 4).dropout(0.25), *engine);
  nn::detail::copy_state(*stock, *ours);
  const torch::Tensor x = torch::randn({length, batch, e});

  auto expect_fallback = [&](const std::string& reason_part, const torch::Tensor& key_padding_mask,
                             bool need_weights, const torch::Tensor& attn_mask) {
    SCOPED_TRACE(reason_part);
    const int64_t fallbacks = ours->fallback_calls();
    const uint64_t call_seed = fresh_seed();
    torch::manual_seed(call_seed);
    const auto [out, weights] = ours->forward(x, x, x, key_padding_mask, need_weights, attn_mask);
    torch::manual_seed(call_seed);  // the same dropout draws for the stock module
    const auto [stock_out, stock_weights] =
        stock->forward(x, x, x, key_padding_mask, need_weights, attn_mask);
    const auto& report = ours->last_report();
    EXPECT_FALSE(report.through_engine);
    EXPECT_EQ(report.backend, nn::fallback_backend);
    EXPECT_NE(report.reason.find(reason_part), std::string::npos) << report.reason;
    EXPECT_EQ(ours->fallback_calls(), fallbacks + 1);
    EXPECT_LT(relative_error(out, stock_out), 1e-6);
    EXPECT_EQ(weights.defined(), need_weights);
    if (need_weights) {
      EXPECT_EQ(weights.sizes(), (torch::IntArrayRef{batch, length, length}));
      EXPECT_LT(relative_error(weights, stock_weights), 1e-6);
    }
  };

  {
    torch::NoGradGuard no_grad;
    // need_weights=true, the stock default, with and without a causal mask.
    expect_fallback("need_weights", {}, true, {});
    const torch::Tensor causal = tnn::TransformerImpl::generate_square_subsequent_mask(length);
    expect_fallback("need_weights", {}, true, causal);
    {
      const auto [out, weights] = ours->forward(x, x, x);  // default arguments: need_weights
      EXPECT_TRUE(weights.defined());
      EXPECT_NE(ours->last_report().reason.find("need_weights"), std::string::npos);
    }
    // An arbitrary float mask, a bool causal mask, a padding mask that masks something.
    expect_fallback("attn_mask", {}, false, torch::randn({length, length}));
    expect_fallback("bool attn_mask", {}, false,
                    torch::ones({length, length}, torch::kBool).triu(1));
    torch::Tensor padding = torch::zeros({batch, length}, torch::kBool);
    padding[1][length - 1] = true;
    expect_fallback("key_padding_mask", padding, false, {});
    // A padding mask that masks nothing goes through the engine.
    ours->forward(x, x, x, torch::zeros({batch, length}, torch::kBool), false);
    EXPECT_TRUE(ours->last_report().through_engine) << ours->last_report().reason;
    // fp64 is not an engine dtype.
    nn::MultiheadAttention ours64(tnn::MultiheadAttentionOptions(e, 4), *engine);
    ours64->to(torch::kDouble);
    ours64->forward(x.to(torch::kDouble), x.to(torch::kDouble), x.to(torch::kDouble), {}, false);
    EXPECT_NE(ours64->last_report().reason.find("dtype"), std::string::npos);
    // Dropout in training mode.
    ours->train();
    stock->train();
    expect_fallback("dropout", {}, false, {});
    ours->eval();
    stock->eval();
  }
  // Autograd recording: the parameters require grad and no guard is active.
  expect_fallback("autograd", {}, false, {});
  {
    torch::InferenceMode inference;
    ours->forward(x, x, x, {}, false);
    EXPECT_TRUE(ours->last_report().through_engine) << ours->last_report().reason;
  }
}

// A small encoder as an application builds it with LibTorch: two stock layers in a Sequential.
tnn::Sequential make_encoder(int64_t d_model, int64_t heads) {
  tnn::Sequential encoder(
      tnn::TransformerEncoderLayer(
          tnn::TransformerEncoderLayerOptions(d_model, heads).dim_feedforward(128)),
      tnn::TransformerEncoderLayer(tnn::TransformerEncoderLayerOptions(d_model, heads)
                                       .dim_feedforward(96)
                                       .activation(torch::kGELU)));
  randomize(*encoder);
  encoder->eval();
  return encoder;
}

TEST(TorchNn, ReplaceAttentionConvertsAnEncoderAndKeepsItsOutputs) {
  auto engine = make_cpu_engine();
  const uint64_t seed = seed_torch();
  SCOPED_TRACE("PFA_TEST_SEED=" + std::to_string(seed));
  const int64_t d_model = 64, heads = 4, length = 33, batch = 3;
  tnn::Sequential encoder = make_encoder(d_model, heads);
  tnn::Sequential encoder64 = fp64_copy(encoder);
  const torch::Tensor src = torch::randn({length, batch, d_model});
  const torch::Tensor causal = tnn::TransformerImpl::generate_square_subsequent_mask(length);

  torch::NoGradGuard no_grad;
  const torch::Tensor before = encoder->forward(src);
  const torch::Tensor reference = encoder64->forward(src.to(torch::kDouble));
  // The causal reference runs the layers one by one (Sequential passes extra arguments to the
  // first module only).
  torch::Tensor reference_causal = src.to(torch::kDouble);
  for (size_t i = 0; i < encoder64->size(); ++i) {
    reference_causal = encoder64->ptr<tnn::TransformerEncoderLayerImpl>(i)->forward(
        reference_causal, causal.to(torch::kDouble));
  }
  const auto names_before = parameter_shapes(*encoder);
  const auto state_before = encoder->named_parameters();

  std::vector<std::string> not_replaced;
  EXPECT_EQ(nn::replace_attention(*encoder, *engine, &not_replaced), 2u);
  EXPECT_TRUE(not_replaced.empty()) << not_replaced.front();
  // Same state_dict names, shapes and values.
  EXPECT_EQ(parameter_shapes(*encoder), names_before);
  for (const auto& item : encoder->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), state_before[item.key()])) << item.key();
  }
  EXPECT_FALSE(encoder->is_training());
  // Both the registered children and what Sequential::forward runs are the pfa modules.
  std::vector<std::shared_ptr<nn::TransformerEncoderLayerImpl>> layers;
  for (size_t i = 0; i < encoder->size(); ++i) {
    auto layer = std::dynamic_pointer_cast<nn::TransformerEncoderLayerImpl>(encoder->ptr(i));
    ASSERT_NE(layer, nullptr) << "entry " << i;
    EXPECT_EQ(encoder->named_children()[std::to_string(i)], encoder->ptr(i));
    layers.push_back(layer);
  }
  EXPECT_EQ(layers[1]->options.activation().index(), torch::nn::activation_t(torch::kGELU).index());

  const torch::Tensor after = encoder->forward(src);
  EXPECT_LT(relative_error(after, reference), kFp32Tolerance);
  EXPECT_LT(relative_error(before, reference), kFp32Tolerance);
  for (const auto& layer : layers) {
    const auto& report = layer->self_attn->last_report();
    EXPECT_TRUE(report.through_engine) << report.reason;
    EXPECT_EQ(report.backend, "cpu_flash");
    EXPECT_EQ(layer->self_attn->engine_calls(), 1);
    EXPECT_EQ(layer->self_attn->fallback_calls(), 0);
  }

  // With the causal mask: recognised, served causal by the engine.
  torch::Tensor after_causal = src;
  for (const auto& layer : layers) after_causal = layer->forward(after_causal, causal);
  EXPECT_LT(relative_error(after_causal, reference_causal), kFp32Tolerance);
  for (const auto& layer : layers) {
    EXPECT_TRUE(layer->self_attn->last_report().causal);
    EXPECT_EQ(layer->self_attn->last_report().backend, "cpu_flash");
  }

  // A second pass replaces nothing: the stock modules are gone.
  EXPECT_EQ(nn::replace_attention(*encoder, *engine), 0u);
}

// Where the parent calls its child through a typed member, nothing is replaced and each stock
// module is listed; the outputs stay the stock ones.
struct UserBlockImpl : tnn::Module {
  UserBlockImpl() : attention(register_module("attention", tnn::MultiheadAttention(32, 2))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    return std::get<0>(attention->forward(x, x, x, {}, false));
  }
  tnn::MultiheadAttention attention;
};
TORCH_MODULE(UserBlock);

TEST(TorchNn, ReplaceAttentionLeavesWhatItCannotReachAndSaysSo) {
  auto engine = make_cpu_engine();
  const uint64_t seed = seed_torch();
  SCOPED_TRACE("PFA_TEST_SEED=" + std::to_string(seed));
  torch::NoGradGuard no_grad;

  tnn::TransformerEncoder stock_encoder(tnn::TransformerEncoderOptions(
      tnn::TransformerEncoderLayerOptions(32, 2).dim_feedforward(64), 2));
  stock_encoder->eval();
  const torch::Tensor src = torch::randn({9, 2, 32});
  const torch::Tensor before = stock_encoder->forward(src);
  std::vector<std::string> not_replaced;
  EXPECT_EQ(nn::replace_attention(*stock_encoder, *engine, &not_replaced), 0u);
  ASSERT_EQ(not_replaced.size(), 2u);
  EXPECT_NE(not_replaced[0].find("layers.0"), std::string::npos) << not_replaced[0];
  EXPECT_TRUE(torch::equal(stock_encoder->forward(src), before));

  UserBlock block;
  not_replaced.clear();
  EXPECT_EQ(nn::replace_attention(*block, *engine, &not_replaced), 0u);
  ASSERT_EQ(not_replaced.size(), 1u);
  EXPECT_NE(not_replaced[0].find("attention"), std::string::npos) << not_replaced[0];
  EXPECT_NE(std::dynamic_pointer_cast<tnn::MultiheadAttentionImpl>(
                block->named_children()["attention"]),
            nullptr);

  // Inside a Sequential nested in a user module, a stock layer is reached.
  tnn::Sequential outer(tnn::Linear(32, 32),
                        tnn::TransformerEncoderLayer(
                            tnn::TransformerEncoderLayerOptions(32, 2).dim_feedforward(64)));
  outer->eval();
  const torch::Tensor x = torch::randn({7, 2, 32});
  const torch::Tensor outer_before = outer->forward(x);
  EXPECT_EQ(nn::replace_attention(*outer, *engine), 1u);
  EXPECT_LT(relative_error(outer->forward(x), outer_before), kFp32Tolerance);
  EXPECT_EQ(outer->ptr<nn::TransformerEncoderLayerImpl>(1)->self_attn->last_report().backend,
            "cpu_flash");
}

}  // namespace
}  // namespace pfa::test

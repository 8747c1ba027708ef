// pfa::nn: LibTorch modules whose attention core runs through pfa's Engine. Header-only, like
// <pfa/torch.h>: include it from code that already links LibTorch; libpfa never does.
//
//   pfa::nn::MultiheadAttention          torch::nn::MultiheadAttention's options, parameters and
//                                         forward(), attention core routed through the engine
//   pfa::nn::TransformerEncoderLayer     torch::nn::TransformerEncoderLayer with that attention
//   pfa::nn::replace_attention(module, engine)
//                                         swaps the stock modules of a tree for these, weights kept
//
// Which calls go through pfa. MultiheadAttention::forward runs the projections with LibTorch, the
// attention core (softmax(q k^T / sqrt(head_dim)) v) on the engine and the output projection with
// LibTorch, when ALL of these hold:
//   - need_weights == false (the engine returns no attention weights; note that the stock default
//     is true, and that torch::nn::TransformerEncoderLayer asks for them);
//   - no dropout on the weights: options.dropout() == 0 or the module is in eval() mode;
//   - autograd is not recording: torch::NoGradGuard or torch::InferenceMode is active, or neither
//     the inputs nor any parameter requires grad (the engine computes no gradients);
//   - attn_mask is undefined, or exactly the float causal mask (0 on and below the diagonal, -inf
//     above, square [L, L], as torch::nn::TransformerImpl::generate_square_subsequent_mask gives)
//     and neither add_bias_kv nor add_zero_attn is set; it maps to causal attention. A bool mask is
//     not mapped: LibTorch's C++ functional adds a bool attn_mask to the scores as 0/1 instead of
//     masking, and this module keeps the stock result;
//   - key_padding_mask is undefined, or a bool mask that masks nothing;
//   - 3-d inputs [seq, batch, embed] of float32, float16 or bfloat16 on CPU or CUDA;
//   - the engine has a backend for the shape (otherwise its pfa::Error unsupported or
//     backend_failure is caught and the call falls back).
// Anything else runs torch::nn::functional::multi_head_attention_forward with the module's
// parameters, exactly as the stock module does, and last_report() says why ("libtorch-fallback"
// and a reason). Nothing is silently approximated: the engine's answer is exact attention unless
// AttentionOptions (attention_options()) admits approximate backends.
//
// What replace_attention can reach. A stock module's forward() is not virtual and stock parents
// call their children through typed members (TransformerEncoderLayerImpl::forward calls its
// `self_attn` holder; TransformerEncoderImpl::forward casts each entry of `layers` to
// TransformerEncoderLayerImpl). Replacing a registered child (Module::replace_module) changes
// named_children(), parameters() and state_dict but not what such a forward() calls, and a member
// holder can only hold its own type. So replace_attention replaces a stock MultiheadAttention or
// TransformerEncoderLayer only where the parent calls it through the registered entry:
//   - inside a torch::nn::Sequential (its forward() runs the type-erased AnyModule it stores; both
//     that entry and the registered child are replaced);
// and leaves every other one as it is, listing it with the reason in `not_replaced`:
//   - a member of a user module or of a stock module (TransformerEncoderLayer's self_attn,
//     TransformerDecoderLayer's attentions, TransformerEncoder's layers, Transformer): build those
//     with pfa::nn types instead, or hold the layers in a torch::nn::Sequential;
//   - ModuleList and ModuleDict entries: their users cast entries back to the stock type.
// A stock TransformerEncoderLayer in a Sequential is replaced whole by pfa::nn's, which calls its
// attention with need_weights=false; a stock one would ask for the weights and fall back anyway.
//
// Parameters: the same names and shapes as the stock module (in_proj_weight, in_proj_bias,
// out_proj.weight, out_proj.bias, bias_k/bias_v with add_bias_kv, q/k/v_proj_weight when kdim or
// vdim differ from embed_dim), so a state_dict saved from one loads into the other. replace_attention
// copies the values: build optimizers after replacing.
//
// last_report() is the last forward()'s; concurrent forward() calls on one module overwrite it.
#pragma once

#include <pfa/engine.h>
#include <pfa/error.h>
#include <pfa/options.h>
#include <pfa/report.h>
#include <pfa/torch.h>

#include <torch/nn/cloneable.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/linear.h>
#include <torch/nn/init.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/modules/transformerlayer.h>
#include <torch/nn/options/activation.h>
#include <torch/nn/options/transformerlayer.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

namespace pfa::nn {

// The backend name a fallback call reports.
inline constexpr const char* fallback_backend = "libtorch-fallback";

// The engine modules use when none is given: one per process, loading the plugins next to libpfa
// and in PFA_PLUGIN_PATH, created on first use.
inline std::shared_ptr<Engine> default_engine() {
  static const std::shared_ptr<Engine> engine = std::make_shared<Engine>();
  return engine;
}

// An engine the caller owns and keeps alive as long as the modules that use it.
inline std::shared_ptr<Engine> borrow(Engine& engine) {
  return std::shared_ptr<Engine>(std::shared_ptr<Engine>(), &engine);
}

// What the last forward() did.
struct AttentionReport {
  bool through_engine = false;  // the attention core ran on the engine
  std::string backend;          // the plugin that served it, or fallback_backend
  std::string reason;           // fallback only: why the engine was not used
  std::string detail;           // the backend's own word on which path ran
  bool causal = false;          // the attention mask was recognised as causal
  double latency_s = 0;         // engine: the backend's run; fallback: the whole stock computation
                                // (projections included; CUDA: until the kernels were queued)
  double energy_j = -1;         // < 0 when unknown (always for the fallback)
  bool energy_measured = false;
  Report engine;                // the engine's full Report (through_engine only); its `backend`
                                // view lives as long as the engine
};

// ------------------------------------------------------------------------------------------------
// MultiheadAttention

class MultiheadAttentionImpl : public torch::nn::Cloneable<MultiheadAttentionImpl> {
 public:
  MultiheadAttentionImpl(int64_t embed_dim, int64_t num_heads)
      : MultiheadAttentionImpl(torch::nn::MultiheadAttentionOptions(embed_dim, num_heads)) {}
  explicit MultiheadAttentionImpl(const torch::nn::MultiheadAttentionOptions& options_,
                                  std::shared_ptr<Engine> engine = nullptr)
      : options(options_), engine_(engine ? std::move(engine) : default_engine()) {
    reset();
  }
  MultiheadAttentionImpl(const torch::nn::MultiheadAttentionOptions& options_, Engine& engine)
      : MultiheadAttentionImpl(options_, borrow(engine)) {}

  // As torch::nn::MultiheadAttention: query [L, N, E], key and value [S, N, kdim/vdim]; returns the
  // output [L, N, E] and, with need_weights, the weights [N, L, S] (averaged over heads when
  // average_attn_weights, else [N, heads, L, S]), otherwise an undefined tensor.
  std::tuple<torch::Tensor, torch::Tensor> forward(const torch::Tensor& query,
                                                   const torch::Tensor& key,
                                                   const torch::Tensor& value,
                                                   const torch::Tensor& key_padding_mask = {},
                                                   bool need_weights = true,
                                                   const torch::Tensor& attn_mask = {},
                                                   bool average_attn_weights = true) {
    bool causal = false;
    std::string reason =
        engine_refusal(query, key, value, key_padding_mask, need_weights, attn_mask, &causal);
    if (reason.empty()) {
      try {
        return through_engine(query, key, value, causal);
      } catch (const Error& e) {
        if (e.code() != ErrorCode::unsupported && e.code() != ErrorCode::backend_failure) throw;
        reason = std::string("the engine could not serve the call (") + error_code_name(e.code()) +
                 "): " + e.what();
      }
    }
    return fallback(query, key, value, key_padding_mask, need_weights, attn_mask,
                    average_attn_weights, std::move(reason));
  }

  // Registers the parameters exactly as torch::nn::MultiheadAttentionImpl::reset() does.
  void reset() override {
    const int64_t embed_dim = options.embed_dim();
    _qkv_same_embed_dim = options.kdim() == embed_dim && options.vdim() == embed_dim;
    head_dim = embed_dim / options.num_heads();
    TORCH_CHECK(head_dim * options.num_heads() == embed_dim,
                "embed_dim must be divisible by num_heads");
    if (!_qkv_same_embed_dim) {
      q_proj_weight = register_parameter("q_proj_weight", torch::empty({embed_dim, embed_dim}));
      k_proj_weight =
          register_parameter("k_proj_weight", torch::empty({embed_dim, options.kdim()}));
      v_proj_weight =
          register_parameter("v_proj_weight", torch::empty({embed_dim, options.vdim()}));
      register_parameter("in_proj_weight", {}, /*requires_grad=*/false);
    } else {
      in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * embed_dim, embed_dim}));
      register_parameter("q_proj_weight", {}, /*requires_grad=*/false);
      register_parameter("k_proj_weight", {}, /*requires_grad=*/false);
      register_parameter("v_proj_weight", {}, /*requires_grad=*/false);
    }
    if (options.bias()) {
      in_proj_bias = register_parameter("in_proj_bias", torch::empty(3 * embed_dim));
    } else {
      register_parameter("in_proj_bias", {}, /*requires_grad=*/false);
    }
    out_proj = register_module(
        "out_proj",
        torch::nn::Linear(torch::nn::LinearOptions(embed_dim, embed_dim).bias(options.bias())));
    if (options.add_bias_kv()) {
      bias_k = register_parameter("bias_k", torch::empty({1, 1, embed_dim}));
      bias_v = register_parameter("bias_v", torch::empty({1, 1, embed_dim}));
    } else {
      bias_k.reset();
      bias_v.reset();
    }
    _reset_parameters();
  }

  // The stock initialisation: Xavier-uniform projections, zero biases, Xavier-normal bias_k/v.
  void _reset_parameters() {
    namespace init = torch::nn::init;
    torch::NoGradGuard no_grad;
    if (_qkv_same_embed_dim) {
      init::xavier_uniform_(in_proj_weight);
    } else {
      init::xavier_uniform_(q_proj_weight);
      init::xavier_uniform_(k_proj_weight);
      init::xavier_uniform_(v_proj_weight);
    }
    if (in_proj_bias.defined()) {
      init::constant_(in_proj_bias, 0.);
      init::constant_(out_proj->bias, 0.);
    }
    if (bias_k.defined()) init::xavier_normal_(bias_k);
    if (bias_v.defined()) init::xavier_normal_(bias_v);
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "pfa::nn::MultiheadAttention(embed_dim=" << options.embed_dim()
           << ", num_heads=" << options.num_heads() << ")";
  }

  // The last forward()'s report, and how many calls went each way since construction.
  const AttentionReport& last_report() const noexcept { return last_report_; }
  int64_t engine_calls() const noexcept { return engine_calls_; }
  int64_t fallback_calls() const noexcept { return fallback_calls_; }

  // Options passed to the engine on every call (backend, objective, max_rel_error...); causal,
  // layout, lse and stream are set per call.
  AttentionOptions& attention_options() noexcept { return attention_options_; }
  Engine& engine() const noexcept { return *engine_; }
  void set_engine(std::shared_ptr<Engine> engine) { engine_ = engine ? std::move(engine) : default_engine(); }

  // The same public members as torch::nn::MultiheadAttentionImpl.
  torch::nn::MultiheadAttentionOptions options;
  bool _qkv_same_embed_dim = true;
  torch::Tensor in_proj_weight;
  torch::Tensor in_proj_bias;
  torch::Tensor bias_k;
  torch::Tensor bias_v;
  torch::nn::Linear out_proj = nullptr;
  torch::Tensor q_proj_weight;
  torch::Tensor k_proj_weight;
  torch::Tensor v_proj_weight;
  int64_t head_dim = 0;

 protected:
  FORWARD_HAS_DEFAULT_ARGS({3, torch::nn::AnyValue(torch::Tensor())},
                           {4, torch::nn::AnyValue(true)},
                           {5, torch::nn::AnyValue(torch::Tensor())},
                           {6, torch::nn::AnyValue(true)})

 private:
  static bool is_causal_mask(const torch::Tensor& mask, int64_t length) {
    if (mask.dim() != 2 || mask.size(0) != length || mask.size(1) != length) return false;
    if (!mask.is_floating_point()) return false;
    const torch::Tensor causal =
        torch::full({length, length}, -std::numeric_limits<double>::infinity(), mask.options())
            .triu(1);
    return torch::equal(mask, causal);
  }

  bool parameters_require_grad() const {
    for (const auto& p : parameters()) {
      if (p.requires_grad()) return true;
    }
    return false;
  }

  // Empty when the engine can serve the call; otherwise why not.
  std::string engine_refusal(const torch::Tensor& query, const torch::Tensor& key,
                             const torch::Tensor& value, const torch::Tensor& key_padding_mask,
                             bool need_weights, const torch::Tensor& attn_mask,
                             bool* causal) const {
    if (need_weights) return "need_weights=true: the engine returns no attention weights";
    if (is_training() && options.dropout() > 0) {
      return "dropout > 0 in training mode: the engine applies no dropout";
    }
    if (torch::GradMode::is_enabled() &&
        (query.requires_grad() || key.requires_grad() || value.requires_grad() ||
         parameters_require_grad())) {
      return "autograd is recording: the engine computes no gradients (use torch::NoGradGuard "
             "or torch::InferenceMode for inference)";
    }
    if (query.dim() != 3 || key.dim() != 3 || value.dim() != 3) {
      return "inputs are not 3-d [seq, batch, embed]";
    }
    const auto dtype = query.scalar_type();
    if (dtype != torch::kFloat && dtype != torch::kHalf && dtype != torch::kBFloat16) {
      return std::string("dtype ") + c10::toString(dtype) +
             ": the engine takes float32, float16 or bfloat16";
    }
    if (key.scalar_type() != dtype || value.scalar_type() != dtype) {
      return "query, key and value have different dtypes";
    }
    if (!(query.is_cpu() || query.is_cuda())) {
      return "device " + query.device().str() + ": the engine takes CPU or CUDA tensors";
    }
    if (query.numel() == 0 || key.numel() == 0) return "empty input";
    if (key_padding_mask.defined()) {
      if (key_padding_mask.scalar_type() != torch::kBool || key_padding_mask.any().item<bool>()) {
        return "key_padding_mask masks keys: the engine takes no padding mask";
      }
    }
    if (attn_mask.defined()) {
      if (attn_mask.scalar_type() == torch::kBool) {
        return "bool attn_mask: LibTorch's C++ computation adds it to the scores as 0/1; kept "
               "stock";
      }
      if (!is_causal_mask(attn_mask, query.size(0)) || key.size(0) != query.size(0)) {
        return "attn_mask is not the square causal mask (0 on and below the diagonal, -inf "
               "above)";
      }
      if (options.add_bias_kv() || options.add_zero_attn()) {
        return "causal attn_mask with add_bias_kv or add_zero_attn: the extra key is not causal";
      }
      *causal = true;
    }
    return {};
  }

  // q, k, v projections as the stock computation does them.
  void project(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
               torch::Tensor& q, torch::Tensor& k, torch::Tensor& v) const {
    namespace F = torch::nn::functional;
    const int64_t e = options.embed_dim();
    auto bias_slice = [&](int64_t from, int64_t to) {
      return in_proj_bias.defined() ? in_proj_bias.slice(0, from, to) : torch::Tensor();
    };
    if (!_qkv_same_embed_dim) {
      q = F::linear(query, q_proj_weight, bias_slice(0, e));
      k = F::linear(key, k_proj_weight, bias_slice(e, 2 * e));
      v = F::linear(value, v_proj_weight, bias_slice(2 * e, 3 * e));
    } else if (query.is_same(key) && key.is_same(value)) {
      auto chunks = F::linear(query, in_proj_weight, in_proj_bias).chunk(3, -1);
      q = chunks[0];
      k = chunks[1];
      v = chunks[2];
    } else if (key.is_same(value)) {
      q = F::linear(query, in_proj_weight.slice(0, 0, e), bias_slice(0, e));
      auto chunks =
          F::linear(key, in_proj_weight.slice(0, e, 3 * e), bias_slice(e, 3 * e)).chunk(2, -1);
      k = chunks[0];
      v = chunks[1];
    } else {
      q = F::linear(query, in_proj_weight.slice(0, 0, e), bias_slice(0, e));
      k = F::linear(key, in_proj_weight.slice(0, e, 2 * e), bias_slice(e, 2 * e));
      v = F::linear(value, in_proj_weight.slice(0, 2 * e, 3 * e), bias_slice(2 * e, 3 * e));
    }
  }

  std::tuple<torch::Tensor, torch::Tensor> through_engine(const torch::Tensor& query,
                                                          const torch::Tensor& key,
                                                          const torch::Tensor& value,
                                                          bool causal) {
    namespace F = torch::nn::functional;
    const int64_t length = query.size(0), batch = query.size(1);
    const int64_t embed_dim = options.embed_dim(), heads = options.num_heads();
    torch::Tensor q, k, v;
    project(query, key, value, q, k, v);
    if (bias_k.defined() && bias_v.defined()) {
      k = torch::cat({k, bias_k.repeat({1, batch, 1})});
      v = torch::cat({v, bias_v.repeat({1, batch, 1})});
    }
    if (options.add_zero_attn()) {
      k = torch::cat({k, torch::zeros({1, batch, embed_dim}, k.options())});
      v = torch::cat({v, torch::zeros({1, batch, embed_dim}, v.options())});
    }
    // [seq, batch, embed] viewed as BSHD [batch, seq, heads, head_dim]: no copy, unit head_dim
    // stride.
    auto bshd = [&](const torch::Tensor& t) {
      return t.reshape({t.size(0), batch, heads, head_dim}).permute({1, 0, 2, 3});
    };
    torch::Tensor out = torch::empty({length, batch, heads, head_dim}, q.options());
    torch::Tensor out_bshd = out.permute({1, 0, 2, 3});
    AttentionOptions call_options = attention_options_;
    call_options.causal = causal;
    call_options.layout = PFA_LAYOUT_BSHD;
    call_options.lse = nullptr;
    const Report report = attention(*engine_, bshd(q), bshd(k), bshd(v), out_bshd, call_options);
    torch::Tensor output =
        F::linear(out.view({length, batch, embed_dim}), out_proj->weight, out_proj->bias);

    AttentionReport r;
    r.through_engine = true;
    r.backend = std::string(report.backend);
    r.detail = std::string(report.detail.data());
    r.causal = causal;
    r.latency_s = report.latency_s;
    r.energy_j = report.energy_j;
    r.energy_measured = report.energy_measured;
    r.engine = report;
    last_report_ = std::move(r);
    ++engine_calls_;
    return std::make_tuple(output, torch::Tensor());
  }

  std::tuple<torch::Tensor, torch::Tensor> fallback(
      const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
      const torch::Tensor& key_padding_mask, bool need_weights, const torch::Tensor& attn_mask,
      bool average_attn_weights, std::string reason) {
    namespace F = torch::nn::functional;
    auto forward_options =
        F::MultiheadAttentionForwardFuncOptions(options.embed_dim(), options.num_heads(),
                                                in_proj_weight, in_proj_bias, bias_k, bias_v,
                                                options.add_zero_attn(), options.dropout(),
                                                out_proj->weight, out_proj->bias)
            .training(is_training())
            .key_padding_mask(key_padding_mask)
            .need_weights(need_weights)
            .attn_mask(attn_mask)
            .average_attn_weights(average_attn_weights);
    if (!_qkv_same_embed_dim) {
      forward_options.use_separate_proj_weight(true)
          .q_proj_weight(q_proj_weight)
          .k_proj_weight(k_proj_weight)
          .v_proj_weight(v_proj_weight);
    }
    const auto start = std::chrono::steady_clock::now();
    auto result = F::multi_head_attention_forward(query, key, value, forward_options);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;

    AttentionReport r;
    r.backend = fallback_backend;
    r.reason = std::move(reason);
    r.detail = "torch::nn::functional::multi_head_attention_forward";
    r.latency_s = elapsed.count();
    last_report_ = std::move(r);
    ++fallback_calls_;
    return result;
  }

  std::shared_ptr<Engine> engine_;
  AttentionOptions attention_options_;
  AttentionReport last_report_;
  int64_t engine_calls_ = 0;
  int64_t fallback_calls_ = 0;
};

TORCH_MODULE(MultiheadAttention);

// ------------------------------------------------------------------------------------------------
// TransformerEncoderLayer: torch::nn::TransformerEncoderLayer's options, children (self_attn,
// linear1, dropout, linear2, norm1, norm2, dropout1, dropout2) and forward(), with self_attn a
// pfa::nn::MultiheadAttention called with need_weights=false.

class TransformerEncoderLayerImpl : public torch::nn::Cloneable<TransformerEncoderLayerImpl> {
 public:
  TransformerEncoderLayerImpl(int64_t d_model, int64_t nhead)
      : TransformerEncoderLayerImpl(torch::nn::TransformerEncoderLayerOptions(d_model, nhead)) {}
  explicit TransformerEncoderLayerImpl(const torch::nn::TransformerEncoderLayerOptions& options_,
                                       std::shared_ptr<Engine> engine = nullptr)
      : options(options_), engine_(engine ? std::move(engine) : default_engine()) {
    reset();
  }
  TransformerEncoderLayerImpl(const torch::nn::TransformerEncoderLayerOptions& options_,
                              Engine& engine)
      : TransformerEncoderLayerImpl(options_, borrow(engine)) {}

  torch::Tensor forward(const torch::Tensor& src, const torch::Tensor& src_mask = {},
                        const torch::Tensor& src_key_padding_mask = {}) {
    namespace F = torch::nn::functional;
    torch::Tensor src2 = std::get<0>(
        self_attn(src, src, src, src_key_padding_mask, /*need_weights=*/false, src_mask));
    torch::Tensor ret = norm1(src + dropout1(src2));
    const torch::Tensor hidden = linear1(ret);
    // Unqualified: c10::visit for LibTorch 1.13's c10::variant, std::visit for 2.x's std::variant.
    torch::Tensor activated = visit(
        [&](const auto& activation) -> torch::Tensor {
          using A = std::decay_t<decltype(activation)>;
          if constexpr (std::is_same_v<A, torch::enumtype::kGELU>) {
            return F::gelu(hidden);
          } else if constexpr (std::is_same_v<A, torch::enumtype::kReLU>) {
            return F::relu(hidden);
          } else {
            return activation(hidden);
          }
        },
        options.activation());
    src2 = linear2(dropout(activated));
    return norm2(ret + dropout2(src2));
  }

  void reset() override {
    self_attn = register_module(
        "self_attn",
        MultiheadAttention(
            torch::nn::MultiheadAttentionOptions(options.d_model(), options.nhead())
                .dropout(options.dropout()),
            engine_));
    linear1 = register_module("linear1",
                              torch::nn::Linear(options.d_model(), options.dim_feedforward()));
    dropout = register_module("dropout", torch::nn::Dropout(options.dropout()));
    linear2 = register_module("linear2",
                              torch::nn::Linear(options.dim_feedforward(), options.d_model()));
    norm1 = register_module(
        "norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.d_model()})));
    norm2 = register_module(
        "norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.d_model()})));
    dropout1 = register_module("dropout1", torch::nn::Dropout(options.dropout()));
    dropout2 = register_module("dropout2", torch::nn::Dropout(options.dropout()));
  }

  void reset_parameters() {
    self_attn->_reset_parameters();
    linear1->reset_parameters();
    linear2->reset_parameters();
    norm1->reset_parameters();
    norm2->reset_parameters();
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "pfa::nn::TransformerEncoderLayer(d_model=" << options.d_model()
           << ", nhead=" << options.nhead() << ")";
  }

  torch::nn::TransformerEncoderLayerOptions options;
  MultiheadAttention self_attn = nullptr;
  torch::nn::Linear linear1 = nullptr;
  torch::nn::Dropout dropout = nullptr;
  torch::nn::Linear linear2 = nullptr;
  torch::nn::LayerNorm norm1 = nullptr;
  torch::nn::LayerNorm norm2 = nullptr;
  torch::nn::Dropout dropout1 = nullptr;
  torch::nn::Dropout dropout2 = nullptr;

 protected:
  FORWARD_HAS_DEFAULT_ARGS({1, torch::nn::AnyValue(torch::Tensor())},
                           {2, torch::nn::AnyValue(torch::Tensor())})

 private:
  std::shared_ptr<Engine> engine_;
};

TORCH_MODULE(TransformerEncoderLayer);

// ------------------------------------------------------------------------------------------------
// replace_attention

namespace detail {

// Copies every parameter and buffer of `from` into the same-named one of `to` (dtype, device,
// requires_grad included) and the training mode.
inline void copy_state(const torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto copy = [](const torch::OrderedDict<std::string, torch::Tensor>& source,
                 torch::OrderedDict<std::string, torch::Tensor> target, const char* what) {
    TORCH_CHECK(source.size() == target.size(), "pfa::nn::replace_attention: ", what, " count ",
                source.size(), " vs ", target.size());
    for (const auto& item : source) {
      torch::Tensor* destination = target.find(item.key());
      TORCH_CHECK(destination != nullptr && destination->sizes() == item.value().sizes(),
                  "pfa::nn::replace_attention: no ", what, " ", item.key(), " of shape ",
                  item.value().sizes(), " in the replacement");
      const bool requires_grad = item.value().requires_grad();
      destination->set_data(item.value().detach().clone());
      if (destination->is_leaf()) destination->set_requires_grad(requires_grad);
    }
  };
  copy(from.named_parameters(), to.named_parameters(), "parameter");
  copy(from.named_buffers(), to.named_buffers(), "buffer");
  to.train(from.is_training());
}

// The pfa replacement of a stock module, or null when `module` is neither kind.
inline std::shared_ptr<torch::nn::Module> replacement_for(
    const std::shared_ptr<torch::nn::Module>& module, const std::shared_ptr<Engine>& engine,
    torch::nn::AnyModule* any) {
  if (auto mha = std::dynamic_pointer_cast<torch::nn::MultiheadAttentionImpl>(module)) {
    MultiheadAttention replacement(mha->options, engine);
    copy_state(*mha, *replacement);
    *any = torch::nn::AnyModule(replacement);
    return replacement.ptr();
  }
  if (auto layer = std::dynamic_pointer_cast<torch::nn::TransformerEncoderLayerImpl>(module)) {
    TransformerEncoderLayer replacement(layer->options, engine);
    copy_state(*layer, *replacement);
    *any = torch::nn::AnyModule(replacement);
    return replacement.ptr();
  }
  return nullptr;
}

inline bool is_stock_attention(const std::shared_ptr<torch::nn::Module>& module) {
  return std::dynamic_pointer_cast<torch::nn::MultiheadAttentionImpl>(module) != nullptr ||
         std::dynamic_pointer_cast<torch::nn::TransformerEncoderLayerImpl>(module) != nullptr;
}

inline size_t replace_in(torch::nn::Module& parent, const std::string& path,
                         const std::shared_ptr<Engine>& engine,
                         std::vector<std::string>* not_replaced) {
  size_t replaced = 0;
  auto* sequential = dynamic_cast<torch::nn::SequentialImpl*>(&parent);
  for (const auto& item : parent.named_children()) {
    const std::string child_path = path.empty() ? item.key() : path + "." + item.key();
    const std::shared_ptr<torch::nn::Module>& child = item.value();
    if (is_stock_attention(child)) {
      if (sequential != nullptr) {
        for (auto it = sequential->begin(); it != sequential->end(); ++it) {
          if (it->ptr() != child) continue;
          torch::nn::AnyModule any;
          auto module = replacement_for(child, engine, &any);
          *it = std::move(any);                      // what Sequential::forward runs
          parent.replace_module(item.key(), module);  // what children(), state_dict see
          ++replaced;
          break;
        }
        continue;
      }
      if (not_replaced != nullptr) {
        not_replaced->push_back(child_path + " (" + child->name() + "): held by " + parent.name() +
                                ", whose forward() calls it through a typed member or cast, not "
                                "the registered child; left stock");
      }
      continue;
    }
    replaced += replace_in(*child, child_path, engine, not_replaced);
  }
  return replaced;
}

}  // namespace detail

// Replaces every stock torch::nn::MultiheadAttention and torch::nn::TransformerEncoderLayer in
// `module`'s tree that its parent calls through the registered entry (see the top of this file:
// today, entries of a torch::nn::Sequential) by the pfa::nn module with the same options and a
// copy of its parameters, buffers, requires_grad flags and training mode, routed through
// `engine`. Returns how many were replaced; every stock one left in place is appended to
// `not_replaced` as "path (type): reason". The engine must outlive the modules (borrow()).
inline size_t replace_attention(torch::nn::Module& module, std::shared_ptr<Engine> engine,
                                std::vector<std::string>* not_replaced = nullptr) {
  if (!engine) engine = default_engine();
  return detail::replace_in(module, "", engine, not_replaced);
}

inline size_t replace_attention(torch::nn::Module& module, Engine& engine,
                                std::vector<std::string>* not_replaced = nullptr) {
  return replace_attention(module, borrow(engine), not_replaced);
}

}  // namespace pfa::nn

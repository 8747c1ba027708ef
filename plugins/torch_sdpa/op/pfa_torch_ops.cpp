// pfa's attention as a PyTorch operator, for Python users of PyTorch:
//
//   torch.ops.load_library(".../libpfa_torch_ops.so")
//   out = torch.ops.pfa.attention(q, k, v, causal=True)            # q: [batch, seq, heads, dim]
//   out, backend, latency_s = torch.ops.pfa.attention_report(q, k, v)
//
// One engine per process, created on first use: it loads the plugins next to libpfa and in
// PFA_PLUGIN_PATH. Tensors are described to it in place (pfa/torch.h); nothing is copied.
#include <pfa/engine.h>
#include <pfa/torch.h>

// c10::optional: LibTorch 1.13's schema inference knows only it; in 2.x it names std::optional.
#include <c10/util/Optional.h>
#include <torch/library.h>

#include <string>
#include <tuple>

namespace {

pfa::Engine& engine() {
  static pfa::Engine instance;  // C++ makes this initialisation thread-safe
  return instance;
}

std::tuple<at::Tensor, std::string, double> attention_report(
    const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool causal,
    c10::optional<double> scale, const std::string& layout, const std::string& backend) {
  pfa::AttentionOptions options;
  options.causal = causal;
  if (scale) options.softmax_scale = static_cast<float>(*scale);
  if (layout == "bhsd") {
    options.layout = PFA_LAYOUT_BHSD;
  } else if (layout != "bshd") {
    throw pfa::Error(pfa::ErrorCode::invalid_argument,
                     "layout must be 'bshd' ([batch, seq, heads, dim]) or 'bhsd', not '" + layout + "'");
  }
  options.backend = backend;
  pfa::Report report;
  at::Tensor out = pfa::attention(engine(), q, k, v, options, &report);
  return {out, std::string(report.backend), report.latency_s};
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool causal,
                     c10::optional<double> scale, const std::string& layout,
                     const std::string& backend) {
  return std::get<0>(attention_report(q, k, v, causal, scale, layout, backend));
}

}  // namespace

// A catch-all kernel: the engine itself routes CPU and CUDA tensors to a backend that serves them.
TORCH_LIBRARY(pfa, m) {
  m.def("attention(Tensor q, Tensor k, Tensor v, bool causal=False, float? scale=None, "
        "str layout='bshd', str backend='') -> Tensor",
        &attention);
  m.def("attention_report(Tensor q, Tensor k, Tensor v, bool causal=False, float? scale=None, "
        "str layout='bshd', str backend='') -> (Tensor, str, float)",
        &attention_report);
}

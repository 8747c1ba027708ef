// The arguments every pfa attention kernel takes: raw pointers, sizes and element strides.
// Kernels know nothing of the engine, the plugin ABI or any framework, so they can be tested and
// benchmarked on their own (FlashInfer keeps its kernels the same way).
#pragma once

#include <cstdint>

namespace pfa::kernels {

enum class DType : int32_t { fp32 = 0, fp16 = 1, bf16 = 2 };

// Logical order is [batch, seq, heads, head_dim]; strides are in elements for the first three
// dimensions (the head_dim stride is 1). Causal masking is bottom-right aligned: query i sees key j
// when j <= i + seqlen_k - seqlen_q; a row that sees no key gets zeros and an LSE of -inf.
struct AttentionParams {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  float* lse = nullptr;  // [batch, heads_q, seqlen_q] contiguous, natural log; may be null

  int64_t batch = 0;
  int64_t heads_q = 0;
  int64_t heads_kv = 0;
  int64_t seqlen_q = 0;
  int64_t seqlen_k = 0;
  int64_t head_dim = 0;

  int64_t q_stride[3] = {0, 0, 0};  // batch, seq, head
  int64_t k_stride[3] = {0, 0, 0};
  int64_t v_stride[3] = {0, 0, 0};
  int64_t o_stride[3] = {0, 0, 0};

  DType dtype = DType::fp32;
  bool causal = false;
  float softmax_scale = 1.0f;
};

}  // namespace pfa::kernels

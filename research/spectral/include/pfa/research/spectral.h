// Fourier-domain attention for research comparisons. Two different things live here:
//
// 1. Spectral low-pass attention (an approximation of softmax attention). The keys and values are
//    cut into blocks of `block` tokens along the sequence; in each block only the lowest `modes`
//    Fourier modes of K and V are kept. A block limited to `modes` modes is represented exactly by
//    `modes` equally spaced samples, so each block shrinks to `modes` pseudo-tokens, each standing
//    for block/modes tokens (a log(block/modes) bias on its score). Queries attend exactly, with
//    softmax, over those pseudo-tokens; under a causal mask the block a query sits in is not yet
//    complete and is attended token by token, so no future token leaks in. Cost per query:
//    (L / block) * modes keys instead of L; with modes >= block it is exact attention. It is good
//    where K and V vary smoothly along the sequence and poor on white noise.
//
// 2. FNet token mixing (Lee-Thorp et al., NAACL 2022): Re(DFT_seq(DFT_hidden(V))), normalised
//    (1/L along the sequence, so the zero mode is the mean of V; 1/sqrt(d) along the hidden axis).
//    It REPLACES attention rather than approximating it: it ignores q and k altogether, mixes
//    features as well as tokens, and its distance from softmax attention is large by design. It
//    is here so that distance can be measured, not because it is close.
//
// FFTs come from KissFFT (BSD). Inputs fp32/fp16/bf16, computed in fp32.
#pragma once

#include <pfa/kernels/attention_params.h>

#include <cstdint>

namespace pfa::research {

struct SpectralConfig {
  int64_t modes = 64;   // Fourier modes kept per block (>= block: exact attention)
  int64_t block = 256;  // tokens per block; 0: the whole key sequence is one block
};

// Spectral low-pass attention into params.out (and params.lse, when set). GQA, causal
// (bottom-right), LSE (an approximation of the exact one). Throws std::invalid_argument for
// inconsistent params.
void spectral_attention(const kernels::AttentionParams& params, const SpectralConfig& config);

// FNet mixing of the values into params.out. Needs seqlen_q == seqlen_k, not causal, no LSE
// (throws std::invalid_argument otherwise). Query heads of one GQA group get the same output.
void fnet_mixing(const kernels::AttentionParams& params);

// Expected relative output error of spectral_attention for inputs with a flat (white) spectrum
// along the sequence, the hard case: 0 when nothing is dropped. Fitted on random inputs, rounded
// up; smooth sequences do much better. `seqlen_q` < 0 means as many queries as keys.
// `score_spread` is softmax_scale * sqrt(head_dim), 1 at the standard scale: the spread of the
// scores for unit-variance inputs. Larger spreads make attention peaked, which a low-pass copy of
// the keys smears, so the error grows with it.
double spectral_expected_error(const SpectralConfig& config, int64_t seqlen_k, bool causal,
                               int64_t seqlen_q = -1, double score_spread = 1.0);

// The same for FNet against softmax attention on random inputs (it does not converge to it).
double fnet_expected_error();

}  // namespace pfa::research

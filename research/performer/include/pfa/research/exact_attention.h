// Plain exact softmax attention on the CPU in fp32 (two passes per row, oneTBB over rows): the
// baseline the research backends are measured against, and their exact path when an
// approximation would keep everything anyway.
#pragma once

#include <pfa/kernels/attention_params.h>

namespace pfa::research {

void exact_attention(const kernels::AttentionParams& params);

}  // namespace pfa::research

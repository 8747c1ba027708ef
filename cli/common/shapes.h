// Where pfa-tune's shapes come from: a CSV file or a grid specification.
#pragma once

#include <pfa/problem.h>

#include <filesystem>
#include <string>
#include <vector>

namespace pfa::cli {

// The columns a shapes file must have (in any order); optional: device, layout, lse.
inline constexpr const char* kShapesHeader =
    "batch,heads_q,heads_kv,seqlen_q,seqlen_k,head_dim,dtype,causal";

// Reads a shapes CSV; throws pfa::Error naming the file, line and field on any problem.
std::vector<Problem> read_shapes_file(const std::filesystem::path& path);

// Expands "batch=1,2;heads_q=8;seqlen_q=128..4096;head_dim=64,128;dtype=fp32,bf16;causal=0,1".
// A value list is comma-separated; lo..hi doubles from lo up to hi. heads_kv defaults to heads_q
// and seqlen_k to seqlen_q. Throws pfa::Error on a bad spec.
std::vector<Problem> expand_grid(const std::string& spec);

}  // namespace pfa::cli

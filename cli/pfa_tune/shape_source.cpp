#include "shape_source.h"

#include "../common/shapes.h"

#include <pfa/error.h>

#include <CLI/CLI.hpp>

namespace pfa::tune {

void ShapeSource::add_options(CLI::App& command) {
  command.add_option("--shapes", file,
                     "CSV of shapes with the header "
                     "batch,heads_q,heads_kv,seqlen_q,seqlen_k,head_dim,dtype,causal");
  command.add_option("--grid", grid,
                     "grid of shapes, e.g. \"batch=1;heads_q=8;seqlen_q=128..4096;head_dim=64,128;"
                     "dtype=fp32,bf16;causal=0,1\"");
}

std::vector<Problem> ShapeSource::problems() const {
  if (file.empty() == grid.empty()) {
    throw Error(ErrorCode::invalid_argument, "give exactly one of --shapes FILE or --grid SPEC");
  }
  return file.empty() ? cli::expand_grid(grid) : cli::read_shapes_file(file);
}

}  // namespace pfa::tune

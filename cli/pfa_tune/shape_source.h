// The --shapes FILE | --grid SPEC pair several commands take.
#pragma once

#include <pfa/problem.h>

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace pfa::tune {

struct ShapeSource {
  std::string file;
  std::string grid;
  void add_options(CLI::App& command);
  // The problems named; pfa::Error when neither or both are given or the input is bad.
  std::vector<Problem> problems() const;
};

}  // namespace pfa::tune

#include "shapes.h"

#include <pfa/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

namespace pfa::cli {

namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, sep)) {
    item.erase(0, item.find_first_not_of(" \t\r"));
    item.erase(item.find_last_not_of(" \t\r") + 1);
    out.push_back(item);
  }
  return out;
}

const std::vector<std::string> kRequired = split(kShapesHeader, ',');
const std::vector<std::string> kOptional = {"device", "layout", "lse"};

}  // namespace

std::vector<Problem> read_shapes_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    throw Error(ErrorCode::io, fmt::format("cannot read shapes file {}", path.string()));
  }
  std::string line;
  if (!std::getline(in, line)) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("{}: empty; the first line must be the header {}", path.string(),
                            kShapesHeader));
  }
  const auto header = split(line, ',');
  for (const auto& column : header) {
    if (std::find(kRequired.begin(), kRequired.end(), column) == kRequired.end() &&
        std::find(kOptional.begin(), kOptional.end(), column) == kOptional.end()) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("{}:1: unknown column '{}'; the header is {} (optional: device, "
                              "layout, lse)", path.string(), column, kShapesHeader));
    }
  }
  for (const auto& column : kRequired) {
    if (std::find(header.begin(), header.end(), column) == header.end()) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("{}:1: missing column '{}'; the header is {}", path.string(),
                              column, kShapesHeader));
    }
  }
  std::vector<Problem> problems;
  int line_number = 1;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos || line[0] == '#') continue;
    const auto cells = split(line, ',');
    if (cells.size() != header.size()) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("{}:{}: {} fields, the header has {}", path.string(), line_number,
                              cells.size(), header.size()));
    }
    std::string spec;
    for (size_t i = 0; i < cells.size(); ++i) {
      spec += fmt::format("{}{}={}", i ? "," : "", header[i], cells[i]);
    }
    try {
      problems.push_back(parse_problem(spec));
    } catch (const Error& e) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("{}:{}: {}", path.string(), line_number, e.what()));
    }
  }
  if (problems.empty()) {
    throw Error(ErrorCode::invalid_argument, fmt::format("{}: no shapes after the header",
                                                         path.string()));
  }
  return problems;
}

std::vector<Problem> expand_grid(const std::string& spec) {
  // Ordered fields, each with its list of values as text.
  std::vector<std::pair<std::string, std::vector<std::string>>> fields;
  for (const auto& item : split(spec, ';')) {
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string::npos) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("grid item '{}' is not key=values", item));
    }
    const std::string key = item.substr(0, eq);
    std::vector<std::string> values;
    for (const auto& value : split(item.substr(eq + 1), ',')) {
      const size_t dots = value.find("..");
      if (dots == std::string::npos) {
        values.push_back(value);
        continue;
      }
      int64_t lo = 0, hi = 0;
      try {
        lo = std::stoll(value.substr(0, dots));
        hi = std::stoll(value.substr(dots + 2));
      } catch (const std::exception&) {
        throw Error(ErrorCode::invalid_argument,
                    fmt::format("grid range '{}' for {} needs integers, as in 128..4096", value, key));
      }
      if (lo <= 0 || hi < lo) {
        throw Error(ErrorCode::invalid_argument,
                    fmt::format("grid range '{}' for {} must satisfy 0 < lo <= hi", value, key));
      }
      for (int64_t x = lo; x <= hi; x *= 2) values.push_back(std::to_string(x));
    }
    if (values.empty()) {
      throw Error(ErrorCode::invalid_argument, fmt::format("grid field {} has no values", key));
    }
    fields.emplace_back(key, values);
  }
  if (fields.empty()) throw Error(ErrorCode::invalid_argument, "empty grid specification");
  std::vector<Problem> problems;
  std::vector<size_t> index(fields.size(), 0);
  while (true) {
    std::string text;
    for (size_t f = 0; f < fields.size(); ++f) {
      text += fmt::format("{}{}={}", f ? "," : "", fields[f].first, fields[f].second[index[f]]);
    }
    problems.push_back(parse_problem(text));
    if (problems.size() > 100000) {
      throw Error(ErrorCode::invalid_argument, "grid expands to more than 100000 shapes");
    }
    size_t f = fields.size();
    while (f > 0) {
      --f;
      if (++index[f] < fields[f].second.size()) break;
      index[f] = 0;
      if (f == 0) return problems;
    }
  }
}

}  // namespace pfa::cli

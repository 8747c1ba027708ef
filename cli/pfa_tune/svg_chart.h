// Small inline-SVG charts for the HTML report: no scripts, no network, just markup.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pfa::tune {

std::string html_escape(std::string_view text);

// A fixed colour per series index, readable on white.
const char* series_colour(size_t index);

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in x order
  bool dashed = false;
};

struct LineChartSpec {
  std::string id;       // the svg element's id
  std::string title;
  std::string x_label, y_label;
  bool log_x = false, log_y = false;
  // Series colours come from `colour_index[i]` when given (so a backend keeps its colour across
  // charts), else from i.
  std::vector<size_t> colour_index;
};

// A line chart with axes, ticks, points and a legend. Non-positive values are dropped on a log axis.
std::string line_chart(const LineChartSpec& spec, const std::vector<Series>& series);

struct Bar {
  std::string label;
  double value = 0;
  size_t colour = 0;
  bool hatched = false;  // e.g. a modelled rather than measured figure
  std::string note;      // shown after the value
};

// A horizontal bar chart (log scale when the values span more than 100x).
std::string bar_chart(const std::string& id, const std::string& title, const std::string& unit,
                      const std::vector<Bar>& bars);

}  // namespace pfa::tune

#include "svg_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace pfa::tune {

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

const char* series_colour(size_t index) {
  static const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                   "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
  return kColours[index % (sizeof kColours / sizeof kColours[0])];
}

namespace {

constexpr double kWidth = 640, kHeight = 320, kLeft = 70, kRight = 170, kTop = 30, kBottom = 45;

struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  double pixels_lo = 0, pixels_hi = 1;
  double map(double v) const {
    const double a = log ? std::log10(lo) : lo, b = log ? std::log10(hi) : hi;
    const double x = log ? std::log10(v) : v;
    const double t = b > a ? (x - a) / (b - a) : 0.5;
    return pixels_lo + t * (pixels_hi - pixels_lo);
  }
  std::vector<double> ticks() const {
    std::vector<double> out;
    if (log) {
      for (double e = std::floor(std::log10(lo)); e <= std::ceil(std::log10(hi)); ++e) {
        const double v = std::pow(10.0, e);
        if (v >= lo * 0.999 && v <= hi * 1.001) out.push_back(v);
      }
      if (out.size() < 2) out = {lo, hi};
    } else {
      for (int i = 0; i <= 4; ++i) out.push_back(lo + (hi - lo) * i / 4.0);
    }
    return out;
  }
};

std::string tick_text(double v) {
  if (v >= 1 && v < 1e7 && v == std::floor(v)) return fmt::format("{:.0f}", v);
  return fmt::format("{:.4g}", v);
}

void fit(Axis& axis, const std::vector<double>& values) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : values) {
    if (!std::isfinite(v) || (axis.log && v <= 0)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (!std::isfinite(lo)) lo = axis.log ? 1 : 0, hi = axis.log ? 10 : 1;
  if (hi == lo) {
    lo = axis.log ? lo / 2 : lo - 0.5;
    hi = axis.log ? hi * 2 : hi + 0.5;
  }
  axis.lo = lo;
  axis.hi = hi;
}

}  // namespace

std::string line_chart(const LineChartSpec& spec, const std::vector<Series>& series) {
  Axis x{.log = spec.log_x, .pixels_lo = kLeft, .pixels_hi = kWidth - kRight};
  Axis y{.log = spec.log_y, .pixels_lo = kHeight - kBottom, .pixels_hi = kTop};
  std::vector<double> xs, ys;
  for (const auto& s : series) {
    for (const auto& [px, py] : s.points) {
      if ((spec.log_x && px <= 0) || (spec.log_y && py <= 0)) continue;
      xs.push_back(px);
      ys.push_back(py);
    }
  }
  fit(x, xs);
  fit(y, ys);
  std::string svg = fmt::format(
      "<svg id=\"{}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" "
      "height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\">\n",
      html_escape(spec.id), kWidth, kHeight, kWidth, kHeight, html_escape(spec.title));
  svg += fmt::format("<text x=\"{}\" y=\"18\" class=\"title\">{}</text>\n", kLeft,
                     html_escape(spec.title));
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" class=\"plot\"/>\n", kLeft,
                     kTop, kWidth - kLeft - kRight, kHeight - kTop - kBottom);
  for (double t : x.ticks()) {
    const double px = x.map(t);
    svg += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" class=\"grid\"/>"
                       "<text x=\"{0:.1f}\" y=\"{3}\" class=\"tick\" text-anchor=\"middle\">{4}</text>\n",
                       px, kTop, kHeight - kBottom, kHeight - kBottom + 14, tick_text(t));
  }
  for (double t : y.ticks()) {
    const double py = y.map(t);
    svg += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" class=\"grid\"/>"
                       "<text x=\"{3}\" y=\"{2:.1f}\" class=\"tick\" text-anchor=\"end\" "
                       "dominant-baseline=\"middle\">{4}</text>\n",
                       kLeft, kWidth - kRight, py, kLeft - 4, tick_text(t));
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" class=\"label\" text-anchor=\"middle\">{}</text>\n",
                     (kLeft + kWidth - kRight) / 2, kHeight - 8, html_escape(spec.x_label));
  svg += fmt::format("<text x=\"14\" y=\"{0}\" class=\"label\" text-anchor=\"middle\" "
                     "transform=\"rotate(-90 14 {0})\">{1}</text>\n",
                     (kTop + kHeight - kBottom) / 2, html_escape(spec.y_label));
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    const char* colour =
        series_colour(i < spec.colour_index.size() ? spec.colour_index[i] : i);
    auto points = s.points;
    std::sort(points.begin(), points.end());
    std::string path;
    std::string dots;
    for (const auto& [px, py] : points) {
      if ((spec.log_x && px <= 0) || (spec.log_y && py <= 0) || !std::isfinite(py)) continue;
      path += fmt::format("{}{:.1f},{:.1f}", path.empty() ? "M" : " L", x.map(px), y.map(py));
      dots += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"><title>{}: "
                          "{} = {:.4g}, {} = {:.4g}</title></circle>",
                          x.map(px), y.map(py), colour, html_escape(s.name),
                          html_escape(spec.x_label), px, html_escape(spec.y_label), py);
    }
    if (!path.empty()) {
      svg += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>{}\n",
                         path, colour, s.dashed ? " stroke-dasharray=\"5 3\"" : "", dots);
    }
    const double ly = kTop + 8 + 16.0 * static_cast<double>(i);
    svg += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"{3}\" "
                       "stroke-width=\"3\"{4}/><text x=\"{5}\" y=\"{2}\" class=\"legend\" "
                       "dominant-baseline=\"middle\">{6}</text>\n",
                       kWidth - kRight + 10, kWidth - kRight + 28, ly, colour,
                       s.dashed ? " stroke-dasharray=\"5 3\"" : "", kWidth - kRight + 32,
                       html_escape(s.name));
  }
  svg += "</svg>\n";
  return svg;
}

std::string bar_chart(const std::string& id, const std::string& title, const std::string& unit,
                      const std::vector<Bar>& bars) {
  const double row = 22, left = 200, width = 760, plot = 300;
  const double height = 40 + row * static_cast<double>(bars.size()) + 10;
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  for (const auto& b : bars) {
    if (b.value > 0) lo = std::min(lo, b.value), hi = std::max(hi, b.value);
  }
  const bool log = hi > 0 && hi / lo > 100;
  auto length = [&](double v) {
    if (!(v > 0) || !(hi > 0)) return 0.0;
    if (!log) return plot * v / hi;
    const double a = std::log10(lo) - 0.5, b = std::log10(hi);
    return plot * (std::log10(v) - a) / (b - a);
  };
  std::string svg = fmt::format(
      "<svg id=\"{}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" "
      "height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\">\n"
      "<defs><pattern id=\"{}-hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
      "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#fff\"/>"
      "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#555\" stroke-width=\"3\"/></pattern></defs>\n"
      "<text x=\"10\" y=\"18\" class=\"title\">{}{}</text>\n",
      html_escape(id), width, height, width, height, html_escape(title), html_escape(id),
      html_escape(title), log ? " (log scale)" : "");
  for (size_t i = 0; i < bars.size(); ++i) {
    const auto& b = bars[i];
    const double y = 32 + row * static_cast<double>(i);
    const double w = std::max(1.0, length(b.value));
    svg += fmt::format("<text x=\"{}\" y=\"{}\" class=\"legend\" text-anchor=\"end\" "
                       "dominant-baseline=\"middle\">{}</text>", left - 6, y + row / 2 - 2,
                       html_escape(b.label));
    svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"{}\" "
                       "stroke=\"{}\" class=\"{}\"><title>{}: {:.4g} {}{}</title></rect>",
                       left, y + 2, w, row - 6,
                       b.hatched ? fmt::format("url(#{}-hatch)", html_escape(id))
                                 : std::string(series_colour(b.colour)),
                       series_colour(b.colour), b.hatched ? "bar modelled" : "bar measured",
                       html_escape(b.label), b.value, html_escape(unit),
                       b.note.empty() ? "" : " (" + html_escape(b.note) + ")");
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" class=\"tick\" dominant-baseline=\"middle\">"
                       "{:.3g} {}{}</text>\n", left + w + 6, y + row / 2 - 2, b.value,
                       html_escape(unit), b.note.empty() ? "" : " " + html_escape(b.note));
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace pfa::tune

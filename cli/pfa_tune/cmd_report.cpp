// pfa-tune report: one self-contained HTML page (inline CSS and SVG, no scripts, no network) with
// latency against sequence length per backend and head dim, the routing map, share of oracle over
// the model's retrains, energy per token per backend (modelled figures marked), and failures.
#include "context.h"
#include "svg_chart.h"

#include <pfa/learner/model_store.h>
#include <pfa/problem.h>
#include <pfa/store/store.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <map>
#include <set>

namespace pfa::tune {

namespace {

double median(std::vector<double>& v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string date_text(int64_t us) {
  const std::time_t t = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

constexpr const char* kStyle = R"css(
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
svg.chart { background: #fff; border: 1px solid #e5e5e5; }
svg .title { font-size: 14px; font-weight: 600; } svg .tick { font-size: 11px; fill: #555; }
svg .label { font-size: 12px; fill: #333; } svg .legend { font-size: 12px; }
svg .plot { fill: #fafafa; stroke: #ccc; } svg .grid { stroke: #e8e8e8; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } .empty { color: #777; font-style: italic; }
.note { color: #555; font-size: 13px; }
table.map td { text-align: center; color: #fff; font-weight: 600; min-width: 70px; }
)css";

struct ReportOptions {
  std::string out;
  int max_failures = 200;
};

void run_report(const Context& context, const ReportOptions& o) {
  if (o.out.empty()) throw Error(ErrorCode::invalid_argument, "--out needs a folder");
  if (o.max_failures < 0) throw Error(ErrorCode::invalid_argument, "--max-failures takes a count >= 0");
  const std::filesystem::path dir(o.out);
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_directory(dir, ec)) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("--out {} is a file: name a folder for the report", o.out));
  }
  const auto store = context.open_existing_store();

  // One pass over the records.
  std::map<std::string, size_t> backend_index;  // stable colours: backends in name order
  std::map<std::tuple<int64_t, std::string, int64_t>, std::vector<double>> latency;  // (D, backend, L)
  std::map<std::tuple<int64_t, int64_t, std::string>, std::vector<double>> cell;     // (D, L, backend)
  struct Energy {
    std::vector<double> measured, modelled;
  };
  std::map<std::string, Energy> energy;
  std::vector<store::ExecutionRecord> failures;
  int64_t total = 0, failed = 0;
  std::set<std::string> simulated_or_approx;
  store->for_each_record({}, [&](const store::ExecutionRecord& r) {
    ++total;
    const std::string backend(store::text(r.backend));
    backend_index.emplace(backend, 0);
    if (!r.ok) {
      ++failed;
      failures.push_back(r);
      if (failures.size() > static_cast<size_t>(o.max_failures)) failures.erase(failures.begin());
      return;
    }
    if (r.simulated || r.approximate) simulated_or_approx.insert(backend);
    if (std::isfinite(r.latency_s) && r.latency_s > 0) {
      latency[{r.problem.head_dim, backend, r.problem.seqlen_q}].push_back(r.latency_s);
      if (!r.simulated && !r.approximate) {
        cell[{r.problem.head_dim, r.problem.seqlen_q, backend}].push_back(r.latency_s);
      }
    }
    if (std::isfinite(r.energy_j) && r.energy_j > 0) {
      const double tokens = static_cast<double>(r.problem.batch * r.problem.seqlen_q);
      auto& e = energy[backend];
      (r.energy_measured ? e.measured : e.modelled).push_back(r.energy_j / tokens);
    }
  });
  size_t next = 0;
  for (auto& [name, index] : backend_index) index = next++;

  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>pfa tuning report"
      "</title><style>{}</style></head><body>\n<h1>pfa tuning report</h1>\n<p class=\"note\" "
      "id=\"summary\">Store {} &middot; schema {} &middot; {} runs ({} failed) &middot; "
      "written {}</p>\n",
      kStyle, html_escape(store->path().string()), store->schema_version(), total, failed,
      date_text(std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count()));

  // Latency against sequence length: one chart per head dim, one line per backend.
  html += "<h2>Latency against sequence length</h2>\n<p class=\"note\">Median latency of "
          "successful runs at each query length (all batch sizes, heads, dtypes and masks at that "
          "length together); dashed lines: simulated or approximate backends.</p>\n"
          "<div class=\"charts\" id=\"latency\">\n";
  std::set<int64_t> head_dims;
  for (const auto& [key, v] : latency) head_dims.insert(std::get<0>(key));
  if (head_dims.empty()) html += "<p class=\"empty\">No successful runs recorded yet.</p>\n";
  for (int64_t d : head_dims) {
    std::map<std::string, Series> by_backend;
    for (auto& [key, v] : latency) {
      if (std::get<0>(key) != d) continue;
      auto& s = by_backend[std::get<1>(key)];
      s.name = std::get<1>(key);
      s.dashed = simulated_or_approx.count(s.name) > 0;
      s.points.emplace_back(static_cast<double>(std::get<2>(key)), median(v));
    }
    std::vector<Series> series;
    LineChartSpec spec{.id = fmt::format("latency-d{}", d),
                       .title = fmt::format("head dim {}", d),
                       .x_label = "sequence length (query)",
                       .y_label = "latency (s)",
                       .log_x = true,
                       .log_y = true};
    for (auto& [name, s] : by_backend) {
      spec.colour_index.push_back(backend_index[name]);
      series.push_back(std::move(s));
    }
    html += line_chart(spec, series);
  }
  html += "</div>\n";

  // Routing map: the measured winner (lowest median latency of exact, real backends) per cell.
  html += "<h2>Routing map</h2>\n<p class=\"note\">Which exact, real backend had the lowest "
          "median latency at each head dim and sequence length (what production routing may "
          "pick).</p>\n";
  std::set<int64_t> lengths;
  std::map<std::pair<int64_t, int64_t>, std::pair<std::string, double>> winner;
  for (auto& [key, v] : cell) {
    const auto [d, l, backend] = key;
    lengths.insert(l);
    const double m = median(v);
    auto it = winner.find({d, l});
    if (it == winner.end() || m < it->second.second) winner[{d, l}] = {backend, m};
  }
  if (winner.empty()) {
    html += "<p class=\"empty\" id=\"routing-map\">No exact, real backend measured yet.</p>\n";
  } else {
    std::set<int64_t> map_dims;
    for (const auto& [key, w] : winner) map_dims.insert(key.first);
    html += "<table class=\"map\" id=\"routing-map\"><tr><th>head dim \\ seq len</th>";
    for (int64_t l : lengths) html += fmt::format("<th>{}</th>", l);
    html += "</tr>\n";
    for (int64_t d : map_dims) {
      html += fmt::format("<tr><th>{}</th>", d);
      for (int64_t l : lengths) {
        auto it = winner.find({d, l});
        if (it == winner.end()) {
          html += "<td style=\"background:#eee;color:#999\">&ndash;</td>";
        } else {
          html += fmt::format("<td style=\"background:{}\" title=\"{:.4g} s\">{}</td>",
                              series_colour(backend_index[it->second.first]), it->second.second,
                              html_escape(it->second.first));
        }
      }
      html += "</tr>\n";
    }
    html += "</table>\n";
  }

  // Share of oracle over time, from each saved model's held-out metrics.
  html += "<h2>Share of oracle as the model retrains</h2>\n<p class=\"note\">Held-out geometric-"
          "mean share of the oracle of every model saved, by objective (1.0: always the fastest "
          "measured backend).</p>\n";
  std::vector<Series> oracle;
  LineChartSpec oracle_spec{.id = "oracle", .title = "held-out share of oracle",
                            .x_label = "hours since the first model", .y_label = "share of oracle"};
  int64_t first_us = INT64_MAX;
  std::vector<std::pair<std::string, std::vector<store::ModelRecord>>> models;
  for (Objective objective : {Objective::latency, Objective::energy, Objective::energy_delay}) {
    auto list = store->models(learner::model_kind(objective));
    for (const auto& m : list) first_us = std::min(first_us, m.created_us);
    if (!list.empty()) models.emplace_back(learner::model_kind(objective), std::move(list));
  }
  for (size_t k = 0; k < models.size(); ++k) {
    Series s{.name = models[k].first};
    for (const auto& m : models[k].second) {
      try {
        const auto metrics = nlohmann::json::parse(m.metrics_json);
        const auto share = metrics.find("geomean_share_of_oracle");
        if (share != metrics.end() && share->is_number()) {
          s.points.emplace_back(static_cast<double>(m.created_us - first_us) / 3.6e9,
                                share->get<double>());
        }
      } catch (const nlohmann::json::exception&) {
        // A model whose metrics do not parse is left off the chart.
      }
    }
    if (!s.points.empty()) {
      oracle_spec.colour_index.push_back(k);
      oracle.push_back(std::move(s));
    }
  }
  if (oracle.empty()) {
    html += "<p class=\"empty\" id=\"oracle\">No model with held-out scores yet (`pfa-tune train`).</p>\n";
  } else {
    html += line_chart(oracle_spec, oracle);
  }

  // Energy per token.
  html += "<h2>Energy per token</h2>\n<p class=\"note\">Median energy per query token of "
          "successful runs. Solid bars are measured; hatched bars are <b>modelled</b> (the "
          "backend's or pfa's estimate, not a meter reading).</p>\n";
  std::vector<Bar> bars;
  for (auto& [backend, e] : energy) {
    if (!e.measured.empty()) {
      bars.push_back({backend + " (measured)", median(e.measured), backend_index[backend], false,
                      fmt::format("{} runs", e.measured.size())});
    }
    if (!e.modelled.empty()) {
      bars.push_back({backend + " (modelled)", median(e.modelled), backend_index[backend], true,
                      fmt::format("modelled, {} runs", e.modelled.size())});
    }
  }
  html += bars.empty() ? "<p class=\"empty\" id=\"energy\">No energy figures recorded.</p>\n"
                       : bar_chart("energy", "energy per token", "J/token", bars);

  // Failures.
  html += fmt::format("<h2>Failures</h2>\n<p class=\"note\">{} failed runs{}.</p>\n", failed,
                      failed > static_cast<int64_t>(failures.size())
                          ? fmt::format(", the latest {} shown", failures.size()) : "");
  html += "<table id=\"failures\"><tr><th>when</th><th>backend</th><th>shape</th><th>status</th>"
          "<th>reason</th></tr>\n";
  if (failures.empty()) html += "<tr><td colspan=\"5\" class=\"empty\">none</td></tr>\n";
  for (auto it = failures.rbegin(); it != failures.rend(); ++it) {
    html += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                        date_text(it->timestamp_us), html_escape(store::text(it->backend)),
                        html_escape(to_string(it->problem)), it->status,
                        html_escape(store::text(it->failure)));
  }
  html += "</table>\n</body></html>\n";

  std::filesystem::create_directories(dir, ec);
  if (ec) {
    throw Error(ErrorCode::io, fmt::format("cannot create the folder {}: {}", o.out, ec.message()));
  }
  const auto file = dir / "index.html";
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << html;
  out.flush();
  if (!out) throw Error(ErrorCode::io, fmt::format("cannot write {}", file.string()));
  if (context.json) {
    context.print_json({{"report", file.string()}, {"records", total}, {"failed", failed},
                        {"bytes", html.size()}});
  } else {
    fmt::print("wrote {} ({} runs, {} failed)\n", file.string(), total, failed);
  }
}

}  // namespace

void add_report_command(CLI::App& app, Context& context) {
  auto options = std::make_shared<ReportOptions>();
  auto* cmd = app.add_subcommand(
      "report", "Write a self-contained HTML report (inline SVG, opens without a network): "
                "latency vs sequence length, routing map, share of oracle over retrains, energy "
                "per token, failures.\nExample: pfa-tune report --out report/ && xdg-open "
                "report/index.html");
  cmd->add_option("--out", options->out, "folder for index.html (created if missing)")->required();
  cmd->add_option("--max-failures", options->max_failures,
                  "how many of the latest failures to list (default 200)");
  cmd->callback([&context, options] { run_report(context, *options); });
}

}  // namespace pfa::tune

#include "conformance.h"

#include "attention_case.h"

#include <pfa/engine.h>
#include <pfa/error.h>

#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace pfa::conformance {

namespace fs = std::filesystem;

const char* outcome_name(Outcome outcome) noexcept {
  switch (outcome) {
    case Outcome::pass: return "pass";
    case Outcome::fail: return "FAIL";
    case Outcome::warn: return "warn";
    case Outcome::skip: return "skip";
  }
  return "?";
}

bool Report::passed(bool strict) const {
  return std::none_of(checks.begin(), checks.end(), [strict](const CheckResult& c) {
    return c.outcome == Outcome::fail || (strict && c.outcome == Outcome::warn);
  });
}

namespace {

constexpr size_t kMessage = 512;

// The plugin library opened a second time, to call its entry symbol and table directly the way
// hosts of other versions would. Kept mapped (RTLD_NODELETE) like the engine's own loader does.
class RawPlugin {
 public:
  explicit RawPlugin(const fs::path& file)
      : handle_(dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)) {
    if (handle_) entry_ = reinterpret_cast<pfa_plugin_entry_fn>(dlsym(handle_, PFA_PLUGIN_ENTRY_SYMBOL));
  }
  ~RawPlugin() {
    if (context_ && api_ && api_->destroy) api_->destroy(context_);
    if (handle_) dlclose(handle_);
  }
  RawPlugin(const RawPlugin&) = delete;
  RawPlugin& operator=(const RawPlugin&) = delete;

  pfa_plugin_entry_fn entry() const { return entry_; }

  // The table and a context of its own, negotiated as this host; null when either fails.
  const pfa_plugin_api* open(std::string* why) {
    const pfa_host_info host = current_host();
    char message[kMessage] = {0};
    if (!entry_ || entry_(&host, &api_, message, sizeof message) != PFA_STATUS_OK || !api_) {
      *why = message;
      return api_ = nullptr;
    }
    if (api_->create(&host, &context_, message, sizeof message) != PFA_STATUS_OK) {
      *why = message;
      context_ = nullptr;
      return api_ = nullptr;
    }
    return api_;
  }
  pfa_context* context() const { return context_; }

  static pfa_host_info current_host() {
    return pfa_host_info{sizeof(pfa_host_info), PFA_ABI_VERSION_MAJOR, PFA_ABI_VERSION_MINOR,
                         "conformance"};
  }

 private:
  void* handle_ = nullptr;
  pfa_plugin_entry_fn entry_ = nullptr;
  const pfa_plugin_api* api_ = nullptr;
  pfa_context* context_ = nullptr;
};

using Clock = std::chrono::steady_clock;

struct Recorder {
  Report& report;
  void add(std::string name, Outcome outcome, std::string detail, Clock::time_point start) {
    report.checks.push_back({std::move(name), outcome, std::move(detail),
                             std::chrono::duration<double>(Clock::now() - start).count()});
  }
};

std::string join_first(const std::vector<std::string>& items, size_t most) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < most; ++i) out += (i ? "; " : "") + items[i];
  if (items.size() > most) out += fmt::format("; and {} more", items.size() - most);
  return out;
}

// Problems a host could send, from ordinary to absurd: each answer must be yes, or no with a reason.
std::vector<Problem> probe_problems() {
  struct Seq {
    int64_t q, k;
  };
  std::vector<Problem> out;
  for (int32_t device : {kDLCPU, kDLCUDA, kDLVulkan})
    for (auto dtype : {PFA_DTYPE_FP32, PFA_DTYPE_FP16, PFA_DTYPE_BF16})
      for (int64_t d : {1, 13, 64, 100, 128, 256, 512, 1024})
        for (Seq s : {Seq{1, 1}, Seq{64, 64}, Seq{33, 17}, Seq{1, 4096}, Seq{16384, 16384}})
          for (int64_t heads_kv : {8, 2})
            for (int causal = 0; causal < 2; ++causal) {
              Problem p = make_problem(1, 8, heads_kv, s.q, s.k, d, dtype, causal != 0);
              p.device_type = device;
              p.want_lse = (d + s.q) % 2 == 0;
              out.push_back(p);
            }
  return out;
}

// A random problem of modest size: the reference runs in double on one core.
Problem random_problem(std::mt19937_64& rng, pfa_layout* layout, bool* padded) {
  auto pick = [&](std::initializer_list<int64_t> values) {
    return *(values.begin() + std::uniform_int_distribution<size_t>(0, values.size() - 1)(rng));
  };
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  auto chance = [&](double p) { return std::bernoulli_distribution(p)(rng); };
  const int64_t heads_kv = pick({1, 2, 3});
  const int64_t heads_q = heads_kv * pick({1, 2, 4});
  const int64_t seqlen_q = chance(0.2) ? 1 : uniform(1, 128);
  const int64_t seqlen_k = chance(0.3) ? seqlen_q : uniform(1, 160);
  const int64_t head_dim = chance(0.15) ? uniform(1, 256) : pick({16, 32, 40, 64, 64, 80, 96, 128, 128, 256});
  const auto dtype = static_cast<pfa_dtype>(uniform(0, 2));
  Problem p = make_problem(pick({1, 1, 2}), heads_q, heads_kv, seqlen_q, seqlen_k, head_dim, dtype,
                           chance(0.5));
  p.want_lse = chance(0.5);
  if (chance(0.25)) p.softmax_scale = static_cast<float>(std::uniform_real_distribution<double>(0.05, 0.5)(rng));
  *layout = chance(0.5) ? PFA_LAYOUT_BSHD : PFA_LAYOUT_BHSD;
  *padded = chance(0.25);
  p.layout = *padded ? PFA_LAYOUT_STRIDED : *layout;
  return p;
}

// An exact backend is held to rounding on every row. An approximate one is held to 3x the error
// its estimate declares, judged in aggregate as that estimate is: the output by its relative
// error over the whole tensor, the LSE by its root-mean-square error over the rows, in nats (the
// log of the normaliser's relative error), and never tighter than one nat. A compressed or noisy
// normaliser strays furthest on the few rows whose scores are peaked.
struct Limits {
  double output;
  double lse;
  bool lse_rms;
};

Limits limits_for(const Plugin& plugin, const Problem& problem) {
  if (!plugin.approximate()) return {tolerance(problem.dtype), 2e-3, false};
  const double declared = 3.0 * plugin.estimate(problem).rel_error;
  return {std::max(tolerance(problem.dtype), declared), std::max(1.0, declared), true};
}

// Runs one case through the engine with the plugin forced; empty when it matched the reference.
std::string run_and_judge(Engine& engine, const Plugin& plugin, AttentionCase& c, double* error) {
  AttentionOptions options;
  options.causal = c.problem.causal != 0;
  options.softmax_scale = c.problem.softmax_scale;
  options.layout = c.layout;
  options.lse = c.problem.want_lse ? &c.lse.dl() : nullptr;
  options.backend = plugin.name();
  options.max_rel_error = 1.0;
  options.what_if = true;
  const std::string what = to_string(c.problem) + (c.padded ? " padded" : "") + " " + layout_name(c.layout);
  try {
    engine.attention(c.q.dl(), c.k.dl(), c.v.dl(), c.out.dl(), options);
  } catch (const std::exception& e) {
    return fmt::format("{}: {}", what, e.what());
  }
  const Comparison cmp = compare_with_reference(c);
  const Limits limit = limits_for(plugin, c.problem);
  *error = cmp.rel_error;
  if (cmp.non_finite) return fmt::format("{}: {} output elements not written (or not finite)", what, cmp.non_finite);
  if (!cmp.gaps_untouched) return fmt::format("{}: wrote between the output's strided rows", what);
  if (!(cmp.rel_error < limit.output)) {
    return fmt::format("{}: relative error {:.3g} over {:.3g}", what, cmp.rel_error, limit.output);
  }
  const double lse_error = limit.lse_rms ? cmp.lse_rms : cmp.lse_error;
  if (c.problem.want_lse && !(lse_error < limit.lse)) {
    return fmt::format("{}: LSE off by {:.3g}{} (limit {:.3g})", what, lse_error,
                       limit.lse_rms ? " root-mean-square over rows" : "", limit.lse);
  }
  return {};
}

}  // namespace

Report check_plugin(const fs::path& plugin_file, const Options& options) {
  Report report;
  report.plugin_file = plugin_file;
  report.seed = options.seed ? options.seed : (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  Recorder rec{report};
  std::mt19937_64 rng(report.seed);

  // --- load: the engine's own negotiation, as an application would load the plugin.
  auto start = Clock::now();
  std::unique_ptr<Engine> engine;
  try {
    EngineOptions eo;
    eo.plugins.paths = {plugin_file};
    eo.plugins.default_paths = false;
    engine = std::make_unique<Engine>(std::move(eo));
  } catch (const std::exception& e) {
    rec.add("load", Outcome::fail, e.what(), start);
    return report;
  }
  if (engine->plugins().empty()) {
    rec.add("load", Outcome::fail,
            engine->load_errors().empty() ? "no plugin loaded" : engine->load_errors()[0].message, start);
    return report;
  }
  const Plugin& plugin = *engine->plugins()[0];
  report.name = plugin.name();
  report.version = plugin.version();
  report.abi = fmt::format("{}.{}", plugin.abi_major(), plugin.abi_minor());
  rec.add("load", Outcome::pass, fmt::format("loaded as '{}' {}, ABI {}", report.name, report.version, report.abi), start);

  // --- describes_itself
  start = Clock::now();
  {
    std::vector<std::string> missing;
    if (plugin.version().empty()) missing.push_back("version");
    if (plugin.description().empty()) missing.push_back("description");
    if (plugin.device_types_text().empty()) missing.push_back("device_types");
    rec.add("describes_itself", missing.empty() ? Outcome::pass : Outcome::fail,
            missing.empty() ? fmt::format("devices {}; {}{}{}", plugin.device_types_text(),
                                          plugin.approximate() ? "approximate" : "exact",
                                          plugin.simulated() ? ", simulated" : "",
                                          plugin.thread_safe() ? ", thread-safe" : "")
                            : "empty: " + join_first(missing, 3),
            start);
  }

  RawPlugin raw(plugin_file);

  // --- abi_table: the table's struct_size, older and newer plugins alike.
  start = Clock::now();
  {
    std::string why;
    const pfa_plugin_api* api = raw.open(&why);
    if (!api) {
      rec.add("abi_table", Outcome::fail, "second open failed: " + why, start);
    } else if (api->struct_size < offsetof(pfa_plugin_api, extensions)) {
      rec.add("abi_table", Outcome::fail,
              fmt::format("struct_size {} is shorter than ABI 1.0's table ({} bytes up to extensions)",
                          api->struct_size, offsetof(pfa_plugin_api, extensions)),
              start);
    } else {
      const char* age = api->struct_size < sizeof(pfa_plugin_api)   ? " (an older, shorter table: accepted)"
                        : api->struct_size > sizeof(pfa_plugin_api) ? " (a newer, longer table: accepted)"
                                                                    : "";
      rec.add("abi_table", Outcome::pass,
              fmt::format("struct_size {} of this host's {}{}; ABI {}.{} vs host {}.{}", api->struct_size,
                          sizeof(pfa_plugin_api), age, api->abi_major, api->abi_minor,
                          PFA_ABI_VERSION_MAJOR, PFA_ABI_VERSION_MINOR),
              start);
    }
  }

  // --- abi_newer_host_refused: a host of the next major version must be refused with a message.
  start = Clock::now();
  if (raw.entry()) {
    pfa_host_info host = RawPlugin::current_host();
    host.abi_major = PFA_ABI_VERSION_MAJOR + 1;
    const pfa_plugin_api* api = nullptr;
    char message[kMessage] = {0};
    const pfa_status status = raw.entry()(&host, &api, message, sizeof message);
    if (status == PFA_STATUS_OK) {
      rec.add("abi_newer_host_refused", Outcome::fail,
              fmt::format("accepted a host of ABI {}.0; return PFA_STATUS_ABI_MISMATCH when the "
                          "host's major differs", host.abi_major),
              start);
    } else if (message[0] == '\0') {
      rec.add("abi_newer_host_refused", Outcome::fail, "refused ABI " + std::to_string(host.abi_major) +
              ".0 without a message", start);
    } else {
      rec.add("abi_newer_host_refused", status == PFA_STATUS_ABI_MISMATCH ? Outcome::pass : Outcome::warn,
              fmt::format("status {}: {}", static_cast<int>(status), message), start);
    }
  }

  // --- abi_older_host_accepted: a host whose pfa_host_info ends before host_version.
  start = Clock::now();
  if (raw.entry()) {
    pfa_host_info host = RawPlugin::current_host();
    host.struct_size = offsetof(pfa_host_info, host_version);
    host.host_version = "(not written by an older host)";
    const pfa_plugin_api* api = nullptr;
    char message[kMessage] = {0};
    pfa_context* context = nullptr;
    if (raw.entry()(&host, &api, message, sizeof message) != PFA_STATUS_OK || !api) {
      rec.add("abi_older_host_accepted", Outcome::fail,
              fmt::format("refused a host_info of {} bytes: {}", host.struct_size, message), start);
    } else if (api->create(&host, &context, message, sizeof message) != PFA_STATUS_OK) {
      rec.add("abi_older_host_accepted", Outcome::fail,
              fmt::format("create() refused a host_info of {} bytes: {}", host.struct_size, message), start);
    } else {
      if (api->destroy) api->destroy(context);
      rec.add("abi_older_host_accepted", Outcome::pass,
              fmt::format("entry and create accept a {}-byte host_info", host.struct_size), start);
    }
  }

  // --- refusal_reasons and estimates over a probe grid.
  start = Clock::now();
  std::vector<Problem> refused;
  std::vector<std::string> refused_reasons;
  {
    std::vector<std::string> silent, bad_estimates;
    size_t yes = 0, no = 0;
    for (const Problem& p : probe_problems()) {
      char reason[kMessage] = {0};
      if (plugin.supports(p, reason, sizeof reason)) {
        ++yes;
        const pfa_estimate e = plugin.estimate(p);
        if (!(e.latency_s > 0) || !std::isfinite(e.latency_s) || !(e.rel_error >= 0)) {
          bad_estimates.push_back(to_string(p));
        }
        continue;
      }
      ++no;
      if (reason[0] == '\0') silent.push_back(to_string(p));
      refused.push_back(p);
      refused_reasons.emplace_back(reason);
    }
    rec.add("refusal_reasons", silent.empty() ? Outcome::pass : Outcome::fail,
            silent.empty() ? fmt::format("{} probes: {} served, {} refused, each with a reason", yes + no, yes, no)
                           : fmt::format("{} of {} refusals without a reason, e.g. {}", silent.size(), no,
                                         join_first(silent, 2)),
            start);
    start = Clock::now();
    rec.add("estimates", bad_estimates.empty() ? (yes ? Outcome::pass : Outcome::skip) : Outcome::fail,
            bad_estimates.empty()
                ? fmt::format("{} served probes: positive, finite latency priors", yes)
                : fmt::format("{} served problems without a positive finite latency (or with a negative "
                              "error), e.g. {}", bad_estimates.size(), join_first(bad_estimates, 2)),
            start);
  }

  const bool cpu = plugin.serves_device_type(kDLCPU);
  const std::string no_cpu = "serves no CPU tensors: this check runs on host memory";

  // --- refused_calls_leave_output: run() on problems supports() refused, with real host tensors.
  start = Clock::now();
  {
    // One refused problem per distinct reason, small enough to allocate. CPU problems only: the
    // tensors are host memory, and a plugin that launched device work on them anyway could take
    // the process down instead of failing a check.
    std::vector<size_t> picks;
    std::map<std::string, bool> reasons_seen;
    for (size_t i = 0; cpu && i < refused.size() && picks.size() < 4; ++i) {
      const Problem& p = refused[i];
      if (p.device_type != kDLCPU) continue;
      const double elements = double(p.batch) * (p.heads_q * p.seqlen_q * 2.0 + p.heads_kv * p.seqlen_k * 2.0) * p.head_dim;
      if (elements > 4e6 || reasons_seen[refused_reasons[i]]) continue;
      reasons_seen[refused_reasons[i]] = true;
      picks.push_back(i);
    }
    std::vector<std::string> problems, served_anyway;
    for (size_t i : picks) {
      Problem p = refused[i];
      AttentionCase c = make_case(p, PFA_LAYOUT_BSHD, false, rng);
      const std::vector<unsigned char> out_before = c.out.bytes(), lse_before = c.lse.bytes();
      pfa_run_args args{sizeof(pfa_run_args), &p, &c.q.dl(), &c.k.dl(), &c.v.dl(), &c.out.dl(),
                        p.want_lse ? &c.lse.dl() : nullptr, nullptr};
      pfa_run_result result{};
      result.struct_size = sizeof result;
      char message[kMessage] = {0};
      const pfa_status status = const_cast<Plugin&>(plugin).run(args, result, message, sizeof message);
      if (status == PFA_STATUS_OK) {
        // Not unsafe (the host asks supports() first), but run() should answer as supports() does.
        served_anyway.push_back(to_string(p));
      } else if (message[0] == '\0') {
        problems.push_back(to_string(p) + ": run() refused without a message");
      } else if (c.out.bytes() != out_before || c.lse.bytes() != lse_before) {
        problems.push_back(to_string(p) + ": run() refused but wrote the output");
      }
    }
    if (picks.empty()) {
      rec.add("refused_calls_leave_output", Outcome::skip,
              cpu ? "no refused CPU problem small enough to try" : no_cpu, start);
    } else {
      if (!problems.empty()) {
        rec.add("refused_calls_leave_output", Outcome::fail, join_first(problems, 2), start);
      } else if (!served_anyway.empty()) {
        rec.add("refused_calls_leave_output", Outcome::warn,
                fmt::format("run() computed {} of {} problems supports() refused (have run() ask "
                            "supports() first), e.g. {}", served_anyway.size(), picks.size(),
                            join_first(served_anyway, 1)),
                start);
      } else {
        rec.add("refused_calls_leave_output", Outcome::pass,
                fmt::format("{} refused problems: run() refused with a message, output untouched", picks.size()),
                start);
      }
    }
  }

  // --- correctness on random problems the plugin serves.
  start = Clock::now();
  std::vector<AttentionCase> served_examples;
  if (!cpu) {
    rec.add("correctness", Outcome::skip, no_cpu, start);
  } else {
    std::vector<std::string> failures;
    int ran = 0, attempts = 0, declined = 0;
    double worst[3] = {0, 0, 0};
    while (ran < options.cases && attempts < options.cases * 40) {
      ++attempts;
      pfa_layout layout;
      bool padded;
      const Problem p = random_problem(rng, &layout, &padded);
      if (!plugin.supports(p)) {
        ++declined;
        continue;
      }
      AttentionCase c = make_case(p, layout, padded, rng);
      double error = 0;
      std::string failure = run_and_judge(*engine, plugin, c, &error);
      if (!failure.empty()) failures.push_back(std::move(failure));
      worst[p.dtype] = std::max(worst[p.dtype], error);
      if (served_examples.size() < 8) served_examples.push_back(std::move(c));
      ++ran;
    }
    if (ran == 0) {
      rec.add("correctness", Outcome::skip,
              fmt::format("declined all {} random problems tried", attempts), start);
    } else {
      rec.add("correctness", failures.empty() ? Outcome::pass : Outcome::fail,
              failures.empty()
                  ? fmt::format("{} random problems ({} declined): worst relative error fp32 {:.2g}, "
                                "fp16 {:.2g}, bf16 {:.2g}", ran, declined, worst[0], worst[1], worst[2])
                  : fmt::format("{} of {} wrong: {}", failures.size(), ran, join_first(failures, 2)),
              start);
    }
  }

  // --- thread_safety: concurrent calls, when the plugin declares them safe.
  start = Clock::now();
  if (!cpu) {
    rec.add("thread_safety", Outcome::skip, no_cpu, start);
  } else if (!plugin.thread_safe()) {
    rec.add("thread_safety", Outcome::skip, "not declared thread-safe: the host serialises its calls", start);
  } else if (served_examples.empty()) {
    rec.add("thread_safety", Outcome::skip, "no served problem to run", start);
  } else {
    std::mutex mutex;
    std::vector<std::string> failures;
    std::vector<std::thread> threads;
    const int count = std::max(2, options.threads);
    for (int t = 0; t < count; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937_64 local(report.seed + 1000 + t);
        for (int i = 0; i < 3; ++i) {
          const AttentionCase& example = served_examples[(t + i) % served_examples.size()];
          AttentionCase c = make_case(example.problem, example.layout, example.padded, local);
          double error = 0;
          std::string failure = run_and_judge(*engine, plugin, c, &error);
          if (!failure.empty()) {
            std::lock_guard lock(mutex);
            failures.push_back(std::move(failure));
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    rec.add("thread_safety", failures.empty() ? Outcome::pass : Outcome::fail,
            failures.empty() ? fmt::format("{} threads x 3 concurrent calls, every output right", count)
                             : fmt::format("{} concurrent calls wrong: {}", failures.size(), join_first(failures, 2)),
            start);
  }

  // --- older_host_structs: results written only where an older host's struct_size reaches. No
  // older host exists while the ABI is 1.0, so a breach is a warning until fields are appended.
  start = Clock::now();
  {
    std::string why;
    RawPlugin own(plugin_file);
    const pfa_plugin_api* api = own.open(&why);
    std::vector<std::string> breaches;
    constexpr unsigned char kCanary = 0xa5;
    auto untouched = [&](const unsigned char* from, const unsigned char* to) {
      return std::all_of(from, to, [](unsigned char b) { return b == kCanary; });
    };
    const Problem* served = served_examples.empty() ? nullptr : &served_examples[0].problem;
    if (api && served && api->estimate) {
      alignas(pfa_estimate) unsigned char buffer[sizeof(pfa_estimate)];
      std::memset(buffer, kCanary, sizeof buffer);
      auto* e = reinterpret_cast<pfa_estimate*>(buffer);
      e->struct_size = offsetof(pfa_estimate, rel_error);
      char message[kMessage] = {0};
      api->estimate(own.context(), served, e, message, sizeof message);
      if (!untouched(buffer + e->struct_size, buffer + sizeof buffer)) {
        breaches.push_back(fmt::format("estimate() wrote past struct_size {}", offsetof(pfa_estimate, rel_error)));
      }
    }
    if (api && served && cpu) {
      Problem p = *served;
      p.layout = PFA_LAYOUT_BSHD;
      AttentionCase c = make_case(p, PFA_LAYOUT_BSHD, false, rng);
      pfa_run_args args{sizeof(pfa_run_args), &p, &c.q.dl(), &c.k.dl(), &c.v.dl(), &c.out.dl(),
                        p.want_lse ? &c.lse.dl() : nullptr, nullptr};
      alignas(pfa_run_result) unsigned char buffer[sizeof(pfa_run_result)];
      std::memset(buffer, kCanary, sizeof buffer);
      auto* r = reinterpret_cast<pfa_run_result*>(buffer);
      r->struct_size = offsetof(pfa_run_result, error_estimate);
      char message[kMessage] = {0};
      if (api->run(own.context(), &args, r, message, sizeof message) == PFA_STATUS_OK &&
          !untouched(buffer + r->struct_size, buffer + sizeof buffer)) {
        breaches.push_back(fmt::format("run() wrote past pfa_run_result struct_size {}",
                                       offsetof(pfa_run_result, error_estimate)));
      }
    }
    if (api && api->device_info && cpu) {
      alignas(pfa_device_info) unsigned char buffer[sizeof(pfa_device_info)];
      std::memset(buffer, kCanary, sizeof buffer);
      auto* info = reinterpret_cast<pfa_device_info*>(buffer);
      info->struct_size = offsetof(pfa_device_info, detail);
      char message[kMessage] = {0};
      if (api->device_info(own.context(), kDLCPU, 0, info, message, sizeof message) == PFA_STATUS_OK &&
          !untouched(buffer + info->struct_size, buffer + sizeof buffer)) {
        breaches.push_back(fmt::format("device_info() wrote past struct_size {}", offsetof(pfa_device_info, detail)));
      }
    }
    if (!api) {
      rec.add("older_host_structs", Outcome::skip, "could not open the plugin a second time: " + why, start);
    } else {
      rec.add("older_host_structs", breaches.empty() ? Outcome::pass : Outcome::warn,
              breaches.empty() ? "writes only the fields a shorter (older) result struct has"
                               : join_first(breaches, 3) + " (check PFA_STRUCT_HAS before writing a field)",
              start);
    }
  }
  return report;
}

}  // namespace pfa::conformance

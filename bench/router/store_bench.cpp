// The execution store's costs: what recording an execution costs the caller (enqueue, and the
// engine observer's whole on_execution), and how many records per second reach the SQLite file.
//
// Baselines measured in the same run: the timer's own cost (an empty timed region) and a bare copy
// of one record for the enqueue figures; one record per transaction (no batching) for throughput;
// streaming reads for the whole-table read.
// Each enqueue is timed on its own; records go in bursts of one batch followed by a flush, so the
// queue never fills and the writer thread commits while producers run (nothing is dropped).
//
//   store_bench [--quick] [--records N] [--dir DIR] [--out FILE] [--commit HASH]
#include <pfa/engine.h>
#include <pfa/plugin.h>
#include <pfa/store/async_writer.h>
#include <pfa/store/store.h>
#include <pfa/store/store_observer.h>

#include <sqlite3.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using pfa::store::ExecutionRecord;

std::string shell(const std::string& command) {
  std::string out;
  if (FILE* f = popen(command.c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof buf, f)) out += buf;
    pclose(f);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string file_system(const fs::path& dir) {
  struct statfs s {};
  if (statfs(dir.c_str(), &s) != 0) return "unknown";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0x01021994: return "tmpfs";
    case 0xEF53: return "ext4";
    case 0x794c7630: return "overlayfs";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    default: {
      char hex[32];
      std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(s.f_type));
      return hex;
    }
  }
}

// Realistic records: a spread of shapes, typical text lengths.
std::vector<ExecutionRecord> make_records(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const char* backends[] = {"cpu_flash", "torch_sdpa", "cuda_fa3", "spectral"};
  std::vector<ExecutionRecord> out(n);
  for (size_t i = 0; i < n; ++i) {
    ExecutionRecord& r = out[i];
    const int64_t len = int64_t{64} << (rng() % 8);
    r.timestamp_us = 1764000000000000 + static_cast<int64_t>(i);
    r.problem = pfa::make_problem(1 + rng() % 8, 16, 1 << (rng() % 5), len, len, 64 << (rng() % 2),
                                  static_cast<pfa_dtype>(rng() % 3), rng() % 2);
    pfa::store::set_text(r.backend, backends[rng() % 4]);
    pfa::store::set_text(r.backend_version, "0.1.0");
    pfa::store::set_text(r.device_name, "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz");
    pfa::store::set_text(r.device_detail, "avx512f avx512bw amx-bf16 2 threads libtorch 1.13.1");
    pfa::store::set_text(r.device_class, "cpu");
    r.latency_s = 1e-5 * static_cast<double>(1 + rng() % 10000);
    r.wall_s = r.latency_s;
    r.energy_j = -1;
    r.ok = rng() % 50 != 0;
    if (!r.ok) pfa::store::set_text(r.failure, "out_of_memory: could not allocate the workspace");
    r.explored = rng() % 20 == 0;
    pfa::store::set_text(r.pfa_version, "0.1.0");
    pfa::store::set_text(r.detail, "avx512");
  }
  return out;
}

struct Percentiles {
  double p50, p99, mean;
};

Percentiles percentiles(std::vector<double> ns) {
  std::sort(ns.begin(), ns.end());
  double sum = 0;
  for (double v : ns) sum += v;
  return {ns[ns.size() / 2], ns[std::min(ns.size() - 1, ns.size() * 99 / 100)],
          sum / static_cast<double>(ns.size())};
}

// CPU seconds this process has used, all threads: divides out the other load on a shared machine.
double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

double ns_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::nano>(b - a).count();
}

// Times `op(i)` one call at a time in bursts of `burst`, calling `between()` untimed after each.
template <class Op, class Between>
std::vector<double> time_each(size_t n, size_t burst, Op&& op, Between&& between) {
  std::vector<double> ns;
  ns.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    op(i);
    const auto t1 = Clock::now();
    ns.push_back(ns_between(t0, t1));
    if ((i + 1) % burst == 0) between();
  }
  return ns;
}

// A backend table for the observer benchmark: only the device lookup matters.
pfa_status bench_create(const pfa_host_info*, pfa_context** context, char*, size_t) {
  *context = nullptr;
  return PFA_STATUS_OK;
}
void bench_destroy(pfa_context*) {}
pfa_status bench_supports(pfa_context*, const pfa_problem*, char*, size_t) { return PFA_STATUS_OK; }
pfa_status bench_run(pfa_context*, const pfa_run_args*, pfa_run_result*, char*, size_t) {
  return PFA_STATUS_OK;
}
pfa_status bench_device_info(pfa_context*, int32_t, int32_t, pfa_device_info* info, char*, size_t) {
  std::snprintf(info->name, sizeof info->name, "%s", cpu_model().c_str());
  std::snprintf(info->detail, sizeof info->detail, "avx512f 2 threads");
  return PFA_STATUS_OK;
}

struct Row {
  std::string what, figure, baseline;
};

}  // namespace

int main(int argc, char** argv) {
  size_t records = 200000;
  fs::path dir;
  fs::path out_file;
  std::string commit;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--quick") {
      records = 40000;
    } else if (a == "--records") {
      records = std::stoul(next());
    } else if (a == "--dir") {
      dir = next();
    } else if (a == "--out") {
      out_file = next();
    } else if (a == "--commit") {
      commit = next();
    } else {
      std::cerr << "usage: store_bench [--quick] [--records N] [--dir DIR] [--out FILE] "
                   "[--commit HASH]\n";
      return a == "--help" ? 0 : 2;
    }
  }
  if (records < 8192) records = 8192;

  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  if (commit.empty()) {
    commit = shell("git -C '" + std::string(PFA_SOURCE_DIR) + "' rev-parse --short HEAD 2>/dev/null");
    if (commit.empty()) commit = "unknown";
    const std::string dirty =
        shell("git -C '" + std::string(PFA_SOURCE_DIR) + "' status --porcelain -- store 2>/dev/null");
    if (!dirty.empty()) commit += " (store/ modified)";
  }
  if (out_file.empty()) {
    out_file = fs::path(PFA_SOURCE_DIR) / "bench" / "results" / ("store_" + std::string(date) + ".md");
  }

  std::string tmpl = ((dir.empty() ? fs::temp_directory_path() : dir) / "pfa-store-bench-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    std::cerr << "cannot create a folder under " << tmpl << "\n";
    return 1;
  }
  const fs::path work = tmpl;
  const std::string fs_type = file_system(work);

  std::vector<Row> rows;
  const size_t batch = 4096;
  const auto data = make_records(records, 42);

  // --- Enqueue cost ----------------------------------------------------------------------------
  const size_t samples = std::min<size_t>(records, 100000);
  // The engine builds each record on its stack, so the source of a copy is hot in cache: cycle
  // through a few records rather than stream the whole data set from memory.
  constexpr size_t kHot = 64;
  {
    // Baselines: an empty timed region (the timer itself) and a bare copy of one record.
    const auto timer = percentiles(time_each(samples, batch, [](size_t) {}, [] {}));
    static ExecutionRecord sink;
    const auto copy = percentiles(time_each(
        samples, batch,
        [&](size_t i) {
          std::memcpy(&sink, &data[i % kHot], sizeof sink);
          asm volatile("" ::: "memory");
        },
        [] {}));

    pfa::store::AsyncWriter writer(work / "enqueue.db", {.capacity = 65536, .batch_size = batch});
    const auto enqueue = percentiles(time_each(
        samples, batch, [&](size_t i) { writer.enqueue(data[i % kHot]); },
        [&] { writer.flush(); }));
    writer.flush();
    const uint64_t dropped = writer.dropped();

    // Two producer threads at once (the machine's core count permitting), same bursts.
    std::vector<double> two[2];
    {
      std::atomic<int> ready{0};
      std::vector<std::jthread> threads;
      for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
          ready.fetch_add(1);
          while (ready.load() < 2) {
          }
          two[t] = time_each(samples / 2, batch / 2,
                             [&](size_t i) { writer.enqueue(data[(i * 2 + t) % kHot]); },
                             [&] { writer.flush(); });
        });
      }
    }
    writer.flush();
    std::vector<double> both = two[0];
    both.insert(both.end(), two[1].begin(), two[1].end());
    const auto enqueue2 = percentiles(both);
    const uint64_t dropped2 = writer.dropped() - dropped;

    // The engine's whole recording step: build the record (device cached) and enqueue it.
    pfa_plugin_api api{};
    api.struct_size = sizeof api;
    api.abi_major = PFA_ABI_VERSION_MAJOR;
    api.abi_minor = PFA_ABI_VERSION_MINOR;
    api.name = "bench_backend";
    api.version = "1.0";
    api.description = "store benchmark";
    api.device_types = 1u << kDLCPU;
    api.create = bench_create;
    api.destroy = bench_destroy;
    api.supports = bench_supports;
    api.run = bench_run;
    api.device_info = bench_device_info;
    pfa::Plugin plugin(nullptr, &api, "bench");
    const pfa::RoutingPolicy policy{};
    pfa::Report report;
    report.backend = plugin.name();
    report.latency_s = 1e-4;
    std::snprintf(report.detail.data(), report.detail.size(), "avx512");
    pfa::store::StoreObserver observer(work / "observer.db", {.capacity = 65536, .batch_size = batch});
    const auto observe = percentiles(time_each(
        samples, batch,
        [&](size_t i) {
          observer.on_execution(pfa::Execution{data[i % kHot].problem, plugin, policy,
                                               PFA_STATUS_OK, "", report});
        },
        [&] { observer.writer().flush(); }));
    observer.writer().flush();
    const uint64_t dropped3 = observer.writer().dropped();

    auto fmt_ns = [](const Percentiles& p) {
      std::ostringstream s;
      s.precision(0);
      s << std::fixed << "p50 " << p.p50 << " ns, p99 " << p.p99 << " ns";
      return s.str();
    };
    const std::string base = "timer alone " + fmt_ns(timer) + "; bare record copy " + fmt_ns(copy);
    rows.push_back({"enqueue, 1 producer (" + std::to_string(samples) + " calls, " +
                        std::to_string(dropped) + " dropped)",
                    fmt_ns(enqueue), base});
    rows.push_back({"enqueue, 2 producers at once (" + std::to_string(both.size()) + " calls, " +
                        std::to_string(dropped2) + " dropped)",
                    fmt_ns(enqueue2), base});
    rows.push_back({"StoreObserver::on_execution (record + enqueue, " + std::to_string(dropped3) +
                        " dropped)",
                    fmt_ns(observe), base});
  }

  // --- Committed throughput --------------------------------------------------------------------
  auto rate = [](size_t n, double s, double cpu_s = 0) {
    std::ostringstream out;
    out.precision(0);
    out << std::fixed << static_cast<double>(n) / s << " records/s";
    if (cpu_s > 0) out << " (" << static_cast<double>(n) / cpu_s << " per CPU second)";
    return out.str();
  };
  std::string single_baseline;
  {
    // Baseline: one record per transaction, as an unbatched writer would commit.
    pfa::store::Store store(work / "single.db");
    const size_t n = std::min<size_t>(records, 3000);
    const double c0 = cpu_seconds();
    const auto t0 = Clock::now();
    for (size_t i = 0; i < n; ++i) store.insert(std::span(&data[i], 1));
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    single_baseline = "one record per transaction: " + rate(n, s, cpu_seconds() - c0);
  }
  {
    pfa::store::Store store(work / "batched.db");
    const double c0 = cpu_seconds();
    const auto t0 = Clock::now();
    for (size_t i = 0; i < data.size(); i += batch) {
      store.insert(std::span(data).subspan(i, std::min(batch, data.size() - i)));
    }
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    rows.push_back({"Store::insert, " + std::to_string(batch) + " per transaction (" +
                        std::to_string(data.size()) + " records)",
                    rate(data.size(), s, cpu_seconds() - c0), single_baseline});
  }
  {
    // End to end: one producer as fast as it can go (pausing 50 us when the queue is full, so
    // that it does not spin against the writer), until the last record is committed.
    pfa::store::AsyncWriter writer(work / "async.db", {.capacity = 65536, .batch_size = batch});
    const double c0 = cpu_seconds();
    const auto t0 = Clock::now();
    for (const auto& r : data) {
      while (!writer.enqueue(r)) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    writer.flush();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    rows.push_back({"AsyncWriter end to end, enqueue to commit (" + std::to_string(data.size()) +
                        " records, " + std::to_string(writer.batches()) + " transactions)",
                    rate(data.size(), s, cpu_seconds() - c0), single_baseline});
    if (pfa::store::Store(work / "async.db").count() != static_cast<int64_t>(data.size())) {
      std::cerr << "the async store lost records\n";
      return 1;
    }
  }
  {
    // Reading back, as the learner does before training: the whole table, then streamed.
    pfa::store::Store store(work / "batched.db");
    auto t0 = Clock::now();
    const auto all = store.records();
    const double s_all = std::chrono::duration<double>(Clock::now() - t0).count();
    t0 = Clock::now();
    size_t streamed = 0;
    store.for_each_record({}, [&](const ExecutionRecord&) { ++streamed; });
    const double s_stream = std::chrono::duration<double>(Clock::now() - t0).count();
    rows.push_back({"Store::records, whole table (" + std::to_string(all.size()) + " rows)",
                    rate(all.size(), s_all),
                    "Store::for_each_record, same rows: " + rate(streamed, s_stream)});
  }
  const auto db_bytes = fs::file_size(work / "batched.db");

  std::ostringstream md;
  md << "# Execution store benchmark\n\n"
     << "- machine: " << cpu_model() << ", " << std::thread::hardware_concurrency()
     << " hardware threads, load average " << load_average() << " at the start of the table\n"
     << "- date: " << stamp << "\n"
     << "- commit: " << commit << "\n"
     << "- SQLite " << sqlite3_libversion() << ", WAL, synchronous=NORMAL; store files on " << fs_type
     << " (" << work.parent_path().string() << ")\n"
     << "- record: " << sizeof(ExecutionRecord) << " bytes in memory, about "
     << db_bytes / data.size() << " bytes per row on disk (" << data.size() << " rows)\n\n"
     << "| measurement | figure | baseline (same run) |\n|---|---|---|\n";
  for (const auto& r : rows) md << "| " << r.what << " | " << r.figure << " | " << r.baseline << " |\n";
  md << "\nEnqueue figures time each call with steady_clock (the timer's own cost is the first "
        "baseline); records go in bursts of one batch, each followed by an untimed flush, so the "
        "writer thread commits while producers run. Throughput is the wall time from the first "
        "record to the last commit; per CPU second divides by the CPU time this process used "
        "instead (all its threads), which other load on the machine does not inflate.\n";

  std::cout << md.str();
  std::error_code ec;
  fs::create_directories(out_file.parent_path(), ec);
  std::ofstream(out_file) << md.str();
  std::cout << "\nwritten to " << out_file.string() << "\n";
  fs::remove_all(work, ec);
  return 0;
}

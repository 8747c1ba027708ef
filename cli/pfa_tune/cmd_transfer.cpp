// pfa-tune export / import / merge: tuning databases that travel between machines and fleets.
//
// Import keeps every new record, but a record measured on a device this machine does not have
// (another fingerprint) is stored as `imported`: it stays for reference and export, and teaches
// routing nothing unless training is asked to (`pfa-tune train --allow-foreign`). Import and merge
// dedupe on each record's content hash, so doing either twice adds nothing.
#include "../common/progress.h"
#include "context.h"
#include "tuning_file.h"

#include <pfa/learner/training.h>
#include <pfa/store/store.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <set>
#include <unordered_set>

#include <unistd.h>

namespace pfa::tune {

namespace {

constexpr int64_t kProgressChunk = 10000;  // records per progress step

// Progress in chunks of records, on a terminal only (a plain line per chunk would flood a log).
std::unique_ptr<cli::Progress> chunk_progress(const Context& context, const char* label,
                                              int64_t records) {
  const bool show = !context.quiet && !context.json && isatty(STDERR_FILENO) &&
                    records >= 2 * kProgressChunk;
  if (!show) return nullptr;
  return std::make_unique<cli::Progress>(label, static_cast<size_t>(records / kProgressChunk));
}

void run_export(const Context& context, const std::string& file) {
  const auto store = context.open_existing_store();
  const auto records = store->records();
  write_tuning_file(file, records);
  if (context.json) {
    context.print_json({{"file", file}, {"records", records.size()}});
  } else {
    fmt::print("exported {} records from {} to {}\n", records.size(), store->path().string(), file);
  }
}

void run_import(const Context& context, const std::string& file) {
  // Everything is read and checked before the store is touched; then one transaction.
  const auto incoming = read_tuning_file(file);
  const auto engine = context.make_engine();
  const auto names = learner::local_device_names(engine->plugins());
  const std::set<std::string> local(names.begin(), names.end());
  const auto store = context.open_store();
  std::unordered_set<std::string> seen;
  {
    const auto progress = chunk_progress(context, "reading the store", store->count());
    int64_t n = 0;
    store->for_each_record({}, [&](const store::ExecutionRecord& r) {
      seen.insert(content_hash(r));
      if (progress && ++n % kProgressChunk == 0) progress->step(std::to_string(n));
    });
    if (progress) progress->finish();
  }
  std::vector<store::ExecutionRecord> added;
  size_t duplicates = 0, foreign = 0;
  for (auto r : incoming) {
    if (!seen.insert(content_hash(r)).second) {
      ++duplicates;
      continue;
    }
    if (!local.count(std::string(store::text(r.device_name)))) {
      r.source = store::RecordSource::imported;
      ++foreign;
    } else if (r.source == store::RecordSource::imported) {
      r.source = store::RecordSource::bench;  // measured on a device like this one after all
    }
    added.push_back(r);
  }
  if (!added.empty()) store->insert(added);
  if (context.json) {
    context.print_json({{"file", file}, {"read", incoming.size()}, {"added", added.size()},
                        {"duplicates", duplicates}, {"foreign", foreign},
                        {"store", store->path().string()}});
  } else {
    fmt::print("read {} records from {}: added {}, {} already in {}\n", incoming.size(), file,
               added.size(), duplicates, store->path().string());
    if (foreign > 0) {
      fmt::print("{} of the added records come from other devices: kept for reference, they steer "
                 "no routing here unless `pfa-tune train --allow-foreign`\n", foreign);
    }
  }
}

void run_merge(const Context& context, const std::vector<std::string>& inputs,
               const std::string& out) {
  std::vector<std::vector<store::ExecutionRecord>> files;
  for (const auto& f : inputs) files.push_back(read_tuning_file(f));
  std::unordered_set<std::string> seen;
  std::vector<store::ExecutionRecord> merged;
  size_t read = 0;
  for (const auto& records : files) {
    for (const auto& r : records) {
      ++read;
      if (seen.insert(content_hash(r)).second) merged.push_back(r);
    }
  }
  write_tuning_file(out, merged);
  if (context.json) {
    context.print_json({{"out", out}, {"read", read}, {"records", merged.size()},
                        {"duplicates", read - merged.size()}});
  } else {
    fmt::print("merged {} files ({} records, {} duplicates dropped) into {} with {} records\n",
               inputs.size(), read, read - merged.size(), out, merged.size());
  }
}

}  // namespace

void add_transfer_commands(CLI::App& app, Context& context) {
  auto file = std::make_shared<std::string>();
  auto* exp = app.add_subcommand(
      "export", "Write every record of the store to a portable tuning database (JSON lines with "
                "a header naming the format, version and device fingerprints).\n"
                "Example: pfa-tune export h100-node7.pfatune");
  exp->add_option("FILE", *file, "the file to write (replaced atomically)")->required();
  exp->callback([&context, file] { run_export(context, *file); });

  auto* imp = app.add_subcommand(
      "import", "Add a tuning database's records to the store: all checked first, then one "
                "transaction; records already there are skipped; records of other devices are "
                "kept but do not steer routing unless `train --allow-foreign`.\n"
                "Example: pfa-tune import fleet.pfatune");
  imp->add_option("FILE", *file, "a file written by export or merge")->required();
  imp->callback([&context, file] { run_import(context, *file); });

  auto inputs = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  auto* merge = app.add_subcommand(
      "merge", "Merge tuning databases into one file, each record once (merging a file with "
               "itself changes nothing).\nExample: pfa-tune merge a.pfatune b.pfatune --out "
               "fleet.pfatune");
  merge->add_option("FILES", *inputs, "files written by export or merge")->required();
  merge->add_option("--out", *out, "the merged file to write")->required();
  merge->callback([&context, inputs, out] { run_merge(context, *inputs, *out); });
}

}  // namespace pfa::tune

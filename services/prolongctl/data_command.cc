#include "services/prolongctl/data_command.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "datamixer/ingest/ingester.h"
#include "datamixer/store/shard.h"
#include "datamixer/store/stats.h"
#include "datamixer/store/store.h"
#include "datamixer/tokenizer/load.h"

namespace prolong::ctl {
namespace {

struct IngestFlags {
  std::string store;
  std::string tokenizer;
  std::string preset;
  std::string format = "text";
  ingest::IngestOptions options;
};

int Fail(absl::string_view command, const absl::Status& status) {
  std::cerr << "prolongctl data " << command << ": " << status.message() << std::endl;
  return 1;
}

// "1.23M"
std::string Count(double value) {
  if (value >= 1e9) return absl::StrFormat("%.2fG", value / 1e9);
  if (value >= 1e6) return absl::StrFormat("%.2fM", value / 1e6);
  if (value >= 1e3) return absl::StrFormat("%.1fK", value / 1e3);
  return absl::StrFormat("%.0f", value);
}

// One status line: rewritten in place on a terminal, every few seconds into a log otherwise.
void ShowProgress(const ingest::IngestProgress& progress) {
  static const bool terminal = isatty(STDERR_FILENO);
  static int calls = 0;
  const bool last = progress.input_bytes_read >= progress.input_bytes_total;
  if (!terminal && !last && ++calls % 10 != 0) return;
  const double seconds = std::max(1e-3, absl::ToDoubleSeconds(progress.elapsed));
  const double share = progress.input_bytes_total == 0
                           ? 1.0
                           : static_cast<double>(progress.input_bytes_read) /
                                 static_cast<double>(progress.input_bytes_total);
  const double eta = share > 0 ? seconds * (1 - share) / share : 0;
  std::fprintf(stderr, "%s%s docs (%s/s), %s tokens (%s/s), %.0f%% of %sB, ETA %.0f s%s",
               terminal ? "\r" : "", Count(progress.documents).c_str(),
               Count(progress.documents / seconds).c_str(), Count(progress.tokens).c_str(),
               Count(progress.tokens / seconds).c_str(), 100 * share,
               Count(progress.input_bytes_total).c_str(), eta, terminal && !last ? "  " : "\n");
}

int RunIngest(IngestFlags& flags) {
  absl::StatusOr<ingest::Format> format = ingest::ParseFormat(flags.format);
  if (!format.ok()) return Fail("ingest", format.status());
  flags.options.read.format = *format;
  absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> tokenizer =
      tokenizer::LoadTokenizer(flags.tokenizer, flags.preset);
  if (!tokenizer.ok()) return Fail("ingest", tokenizer.status());
  absl::StatusOr<std::unique_ptr<store::Store>> store = store::Store::OpenForWriting(
      flags.store, {(*tokenizer)->fingerprint(), (*tokenizer)->vocab_size()});
  if (!store.ok()) return Fail("ingest", store.status());
  const absl::Time start = absl::Now();
  absl::StatusOr<ingest::IngestSummary> summary =
      ingest::Ingest(flags.options, **tokenizer, (*store)->shard(), ShowProgress);
  if (!summary.ok()) return Fail("ingest", summary.status());
  std::cout << absl::StrFormat(
      "ingested %s: %d added, %d duplicate, %d too short (< %d tokens), %d invalid; %s tokens "
      "added in %.1f s\n",
      flags.options.domain, summary->documents_added, summary->documents_duplicate,
      summary->documents_too_short, flags.options.min_tokens, summary->documents_invalid,
      Count(summary->tokens_added), absl::ToDoubleSeconds(absl::Now() - start));
  if (!summary->problems.empty()) {
    std::cout << "problems (first " << summary->problems.size() << "):\n";
    for (const ingest::Problem& problem : summary->problems) {
      std::cout << "  " << problem.source << ": " << problem.reason << "\n";
    }
  }
  std::cout << std::flush;
  return 0;
}

int RunStats(const std::string& store_dir, bool json) {
  absl::StatusOr<std::unique_ptr<store::Store>> store = store::Store::OpenForReading(store_dir);
  if (!store.ok()) return Fail("stats", store.status());
  const store::Shard& shard = (*store)->shard();
  const store::TokenizerIdentity& tokenizer = (*store)->tokenizer();
  absl::StatusOr<std::vector<store::DomainStats>> domains = store::ComputeDomainStats(shard);
  if (!domains.ok()) return Fail("stats", domains.status());
  absl::StatusOr<std::string> fingerprint = store::ComputeFingerprint(shard);
  if (!fingerprint.ok()) return Fail("stats", fingerprint.status());
  if (json) {
    std::string out = absl::StrCat(
        "{\"fingerprint\": \"", *fingerprint, "\", \"tokenizer_fingerprint\": \"",
        tokenizer.fingerprint, "\", \"vocab_size\": ", tokenizer.vocab_size, ", \"domains\": [");
    for (size_t i = 0; i < domains->size(); ++i) {
      const store::DomainStats& d = (*domains)[i];
      absl::StrAppendFormat(&out,
                            "%s{\"name\": \"%s\", \"documents\": %d, \"tokens\": %d, "
                            "\"min_document_tokens\": %d, \"max_document_tokens\": %d, "
                            "\"length_histogram\": [",
                            i ? ", " : "", d.name, d.documents, d.tokens, d.min_length,
                            d.max_length);
      for (size_t b = 0; b < d.histogram.size(); ++b) {
        absl::StrAppendFormat(&out,
                              "%s{\"upper_bound_tokens\": %d, \"documents\": %d, "
                              "\"tokens\": %d}",
                              b ? ", " : "", d.histogram[b].upper_bound, d.histogram[b].documents,
                              d.histogram[b].tokens);
      }
      out += "]}";
    }
    std::cout << out << "]}" << std::endl;
    return 0;
  }
  std::cout << absl::StrFormat("%-20s %10s %10s %10s %10s\n", "domain", "documents", "tokens",
                               "min len", "max len");
  for (const store::DomainStats& d : *domains) {
    std::cout << absl::StrFormat("%-20s %10d %10s %10d %10d\n", d.name, d.documents,
                                 Count(d.tokens), d.min_length, d.max_length);
    std::string histogram = "  lengths:";
    for (const store::LengthBucket& bucket : d.histogram) {
      if (bucket.documents == 0) continue;
      absl::StrAppend(&histogram, " ",
                      bucket.upper_bound ? absl::StrCat("<=", bucket.upper_bound)
                                         : absl::StrCat(">", d.histogram.end()[-2].upper_bound),
                      ": ", bucket.documents);
    }
    std::cout << histogram << "\n";
  }
  std::cout << "tokenizer: " << tokenizer.fingerprint << " (vocabulary " << tokenizer.vocab_size
            << ")\nfingerprint: " << *fingerprint << std::endl;
  return 0;
}

}  // namespace

void AddDataCommand(CLI::App& app, int* exit_code) {
  CLI::App* data = app.add_subcommand("data", "Ingest documents into a store; inspect it");
  data->require_subcommand(1);

  auto flags = std::make_shared<IngestFlags>();
  flags->options.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  CLI::App* ingest = data->add_subcommand(
      "ingest", "Tokenize documents and add them to a domain of a store (RocksDB)");
  ingest->add_option("--store", flags->store, "Store directory (created if absent)")->required();
  ingest->add_option("--domain", flags->options.domain, "Domain, [a-z0-9_-]{1,63}")->required();
  ingest
      ->add_option("--format", flags->format,
                   "text (a document per file), jsonl (one per line), chat (JSONL "
                   "conversations, loss on assistant replies; needs Llama 3's chat tokens) or "
                   "repo (a repository directory per document)")
      ->check(CLI::IsMember({"text", "jsonl", "chat", "repo"}));
  ingest->add_option("--tokenizer", flags->tokenizer, "Tokenizer file (see tokenizer encode)")
      ->required();
  ingest->add_option("--preset", flags->preset, "llama3 or cl100k_base, for a bare rank file");
  ingest->add_option("--field", flags->options.read.field, "JSONL field holding the text");
  ingest
      ->add_option("--min-tokens", flags->options.min_tokens, "Drop (and count) shorter documents")
      ->check(CLI::NonNegativeNumber);
  ingest->add_flag("--strict", flags->options.strict, "Stop at the first bad document");
  ingest->add_option("--threads", flags->options.threads, "Tokenizing threads")
      ->check(CLI::PositiveNumber);
  ingest
      ->add_option("inputs", flags->options.read.inputs,
                   "Input files (repo: repository directories)")
      ->required();
  ingest->callback([flags, exit_code] { *exit_code = RunIngest(*flags); });

  auto store_dir = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* stats = data->add_subcommand(
      "stats", "Per-domain documents, tokens and length histogram, and the data fingerprint");
  stats->add_option("--store", *store_dir, "Store directory")->required();
  stats->add_flag("--json", *json, "Print JSON");
  stats->callback([store_dir, json, exit_code] { *exit_code = RunStats(*store_dir, *json); });
}

}  // namespace prolong::ctl

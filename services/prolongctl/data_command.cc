#include "services/prolongctl/data_command.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/proto_file.h"
#include "common/status_macros.h"
#include "datamixer/ingest/ingester.h"
#include "datamixer/plan/data_index.h"
#include "datamixer/plan/rank_balance.h"
#include "datamixer/plan/stage_plan.h"
#include "datamixer/serve/describe_plan.h"
#include "datamixer/store/shard.h"
#include "datamixer/store/stats.h"
#include "datamixer/store/store.h"
#include "datamixer/store/verify.h"
#include "datamixer/tokenizer/load.h"
#include "google/protobuf/util/json_util.h"

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

// Every file checked against its checksums, then every document read back and checked against
// its id; exit 1 if a file or a document is bad.
int RunVerify(const std::string& store_dir, const std::string& domain) {
  absl::StatusOr<std::unique_ptr<store::Store>> store = store::Store::OpenForReading(store_dir);
  if (!store.ok()) return Fail("verify", store.status());
  const bool tty = isatty(STDERR_FILENO);
  // A read names a damaged blob file's documents but not the file: reading the files does.
  if (tty) std::cerr << "checking every file of the store" << std::flush;
  const absl::Status files = (*store)->shard().VerifyFiles();
  if (tty) std::cerr << "\r" << std::flush;
  if (absl::IsDataLoss(files)) {
    std::cout << "BAD file: " << files.message() << std::endl;
  } else if (!files.ok()) {
    return Fail("verify", files);
  }
  absl::Time shown = absl::Now();
  size_t printed = 0;
  absl::StatusOr<store::VerifyReport> report =
      store::VerifyDocuments((*store)->shard(), domain, [&](const store::VerifyReport& so_far) {
        // Bad documents as they are found; the count every 2 s on a terminal.
        for (; printed < so_far.bad.size(); ++printed) {
          const store::BadDocument& bad = so_far.bad[printed];
          std::cout << "BAD " << bad.domain << "/" << store::HexId(bad.id) << " (" << bad.source
                    << "): " << bad.problem << std::endl;
        }
        if (tty && absl::Now() - shown > absl::Seconds(2)) {
          shown = absl::Now();
          std::cerr << "\rverified " << so_far.documents << " documents" << std::flush;
        }
      });
  if (tty) std::cerr << "\r" << std::flush;
  if (!report.ok()) return Fail("verify", report.status());
  if (report->bad.empty()) {
    std::cout << "verified " << report->documents << " documents (" << report->tokens
              << " tokens): every one matches its id" << std::endl;
    return files.ok() ? 0 : 1;
  }
  std::cout << report->bad.size() << " of " << report->documents
            << " documents are bad (listed above); the others match their ids" << std::endl;
  return 1;
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

struct PlanFlags {
  std::string store;
  std::string stage;
  uint64_t seed = 0;
  int64_t steps = -1;
  bool json = false;
  int dp_size = 0;  // 0: no imbalance report
  int64_t micro_batch_sequences = 1;
};

// How unevenly one step's attention work falls on the data-parallel ranks (rank_balance.h's
// StepImbalance): as contiguous slices of the batch would give it, and as the datamixer does.
struct StepBalance {
  double contiguous = 1;
  double balanced = 1;
};

absl::StatusOr<StepBalance> BalanceOf(const plan::StagePlan& plan, int64_t step,
                                      const PlanFlags& flags) {
  const std::vector<double> costs = plan::AttentionCosts(plan.GlobalBatch(step));
  ASSIGN_OR_RETURN(const std::vector<std::vector<int64_t>> layout,
                   plan::BalanceDataParallel(costs, flags.dp_size, flags.micro_batch_sequences));
  return StepBalance{
      plan::StepImbalance(costs, plan::ContiguousDataParallel(costs.size(), flags.dp_size),
                          flags.micro_batch_sequences),
      plan::StepImbalance(costs, layout, flags.micro_batch_sequences)};
}

// "mean 1.21, max 1.87"
std::string SummarizeImbalance(const std::vector<StepBalance>& steps, double StepBalance::*layout) {
  double sum = 0, max = 0;
  for (const StepBalance& step : steps) {
    sum += step.*layout;
    max = std::max(max, step.*layout);
  }
  return absl::StrFormat("mean %.3f, max %.3f", sum / std::max<size_t>(1, steps.size()), max);
}

int RunPlan(const PlanFlags& flags) {
  v1::StageSpec stage;
  if (absl::Status status = ReadProtoFile(flags.stage, &stage); !status.ok()) {
    return Fail("plan", status);
  }
  absl::StatusOr<std::unique_ptr<store::Store>> store = store::Store::OpenForReading(flags.store);
  if (!store.ok()) return Fail("plan", store.status());
  absl::StatusOr<std::shared_ptr<const plan::DataIndex>> index =
      plan::LoadDataIndex((*store)->shard());
  if (!index.ok()) return Fail("plan", index.status());
  const absl::Time start = absl::Now();
  absl::StatusOr<std::shared_ptr<const plan::StagePlan>> plan =
      plan::StagePlan::Build(stage, flags.seed, *index);
  if (!plan.ok()) return Fail("plan", plan.status());
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const int64_t steps = flags.steps < 0 ? (*plan)->steps() : flags.steps;
  const v1::StagePlan description = serve::DescribePlan(**plan, steps);
  if (flags.dp_size > 0 && description.sequences_per_batch() % flags.dp_size != 0) {
    return Fail("plan", absl::InvalidArgumentError(absl::StrFormat(
                            "--dp-size: must divide the %d sequences of a global batch, got %d",
                            description.sequences_per_batch(), flags.dp_size)));
  }
  std::vector<StepBalance> balance;
  for (const v1::BatchDescription& batch : description.batches()) {
    if (flags.dp_size == 0) break;
    absl::StatusOr<StepBalance> step = BalanceOf(**plan, batch.step(), flags);
    if (!step.ok()) return Fail("plan", step.status());
    balance.push_back(*step);
  }
  if (flags.json) {
    std::string json;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    options.always_print_primitive_fields = true;
    if (!google::protobuf::util::MessageToJsonString(description, &json, options).ok()) {
      return Fail("plan", absl::InternalError("cannot print the plan as JSON"));
    }
    std::cout << json << std::endl;
    return 0;
  }
  std::cout << absl::StrFormat(
      "plan %s: seed %d over data %s\n%d steps of %d sequences of %d tokens (built in %.2f s)\n\n",
      description.plan_id(), flags.seed, description.fingerprint(), description.steps(),
      description.sequences_per_batch(), description.seq_len(), seconds);
  std::cout << absl::StrFormat("%-16s %-7s %10s %10s %12s %8s\n", "domain", "packing", "share",
                               "sequences", "tokens", "epochs");
  for (int i = 0; i < description.domains_size(); ++i) {
    const v1::DomainPlan& domain = description.domains(i);
    std::cout << absl::StrFormat("%-16s %-7s %10.4f %10d %12s %8.3f\n", domain.domain(),
                                 absl::AsciiStrToLower(absl::StripPrefix(
                                     v1::Packing_Name(stage.mixture(i).packing()), "PACKING_")),
                                 stage.mixture(i).proportion(), domain.sequences(),
                                 Count(domain.tokens()), domain.epochs());
  }
  if (description.batches_size() == 0) return 0;
  std::string header = absl::StrFormat("\n%8s", "step");
  for (const v1::DomainPlan& domain : description.domains()) {
    absl::StrAppendFormat(&header, " %12s", domain.domain().substr(0, 12));
  }
  absl::StrAppendFormat(&header, " %10s %14s", "documents", "sum of squares");
  if (!balance.empty()) absl::StrAppendFormat(&header, " %10s %10s", "contiguous", "balanced");
  std::cout << header << "\n";
  for (int i = 0; i < description.batches_size(); ++i) {
    const v1::BatchDescription& batch = description.batches(i);
    std::string line = absl::StrFormat("%8d", batch.step());
    for (int64_t tokens : batch.domain_tokens()) absl::StrAppendFormat(&line, " %12d", tokens);
    absl::StrAppendFormat(&line, " %10d %14.4g", batch.documents(),
                          batch.sum_squared_document_lengths());
    if (!balance.empty()) {
      absl::StrAppendFormat(&line, " %10.3f %10.3f", balance[i].contiguous, balance[i].balanced);
    }
    std::cout << line << "\n";
  }
  if (balance.empty()) {
    std::cout << std::flush;
    return 0;
  }
  const int64_t micro = flags.micro_batch_sequences;
  std::cout << absl::StrFormat(
      "\nattention-cost imbalance on %d data-parallel ranks, micro-batches of %s (the slowest "
      "rank's\nwork summed over micro-steps, over the mean rank's; 1 is even):\n"
      "  contiguous slices  %s\n  balanced (served)  %s\n",
      flags.dp_size,
      micro == 0 ? std::string("a whole share")
                 : absl::StrCat(micro, micro == 1 ? " sequence" : " sequences"),
      SummarizeImbalance(balance, &StepBalance::contiguous),
      SummarizeImbalance(balance, &StepBalance::balanced));
  std::cout << std::flush;
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

  auto verify_store = std::make_shared<std::string>();
  auto verify_domain = std::make_shared<std::string>();
  CLI::App* verify = data->add_subcommand(
      "verify",
      "Check every file of the store against its checksums, then read every document back and "
      "check it against its id (SHA-256 of its tokens and loss mask) and its indexed length; "
      "list the bad ones and exit 1 if there are any");
  verify->add_option("--store", *verify_store, "Store directory")->required();
  verify->add_option("--domain", *verify_domain, "Only this domain (default: all)");
  verify->callback([verify_store, verify_domain, exit_code] {
    *exit_code = RunVerify(*verify_store, *verify_domain);
  });

  auto plan_flags = std::make_shared<PlanFlags>();
  CLI::App* plan = data->add_subcommand(
      "plan", "Build a stage's deterministic plan and print each global batch's composition");
  plan->add_option("--store", plan_flags->store, "Store directory")->required();
  plan->add_option("--stage", plan_flags->stage,
                   "Stage spec: YAML or JSON (prolong.v1.StageSpec fields), or text format "
                   "(.textproto)")
      ->required();
  plan->add_option("--seed", plan_flags->seed, "Plan seed (the run's seed)");
  plan->add_option("--steps", plan_flags->steps, "Describe the first K batches (default: all)")
      ->check(CLI::NonNegativeNumber);
  plan->add_flag("--json", plan_flags->json, "Print the plan as prolong.v1.StagePlan JSON");
  plan->add_option("--dp-size", plan_flags->dp_size,
                   "Also report each step's attention-cost imbalance over this many "
                   "data-parallel ranks, as contiguous slices and as balanced (served)")
      ->check(CLI::PositiveNumber);
  plan->add_option("--micro-batch-sequences", plan_flags->micro_batch_sequences,
                   "The trainer's sequences per micro-batch, for the imbalance (0: a whole "
                   "share; default 1)")
      ->check(CLI::NonNegativeNumber);
  plan->callback([plan_flags, exit_code] { *exit_code = RunPlan(*plan_flags); });
}

}  // namespace prolong::ctl

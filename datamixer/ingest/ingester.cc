#include "datamixer/ingest/ingester.h"

#include <atomic>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/bounded_queue.h"
#include "common/status_macros.h"

namespace prolong::ingest {
namespace {

// What a worker hands the writer: a document to store, or one that was dropped.
struct Tokenized {
  std::optional<store::Document> document;
  std::optional<Problem> problem;  // Set when the document was invalid.
  bool too_short = false;
};

// A worker's job: one raw document to token ids (and a loss mask for chat), or the reason not.
Tokenized Tokenize(const IngestOptions& options, const tokenizer::Tokenizer& tokenizer,
                   RawDocument document) {
  std::vector<uint32_t> tokens;
  std::string loss_mask;
  if (options.read.format == Format::kChat) {
    absl::StatusOr<tokenizer::ChatTokens> chat =
        tokenizer::EncodeChat(tokenizer, document.messages);
    if (!chat.ok()) {
      return Tokenized{std::nullopt,
                       Problem{document.source, std::string(chat.status().message())}};
    }
    tokens = std::move(chat->tokens);
    loss_mask = std::move(chat->loss_mask);
  } else {
    tokens = tokenizer.Encode(document.text);
  }
  Tokenized item;
  if (static_cast<int64_t>(tokens.size()) < std::max<int64_t>(options.min_tokens, 1)) {
    item.too_short = true;
  } else {
    item.document = store::Document{options.domain, std::move(document.source), std::move(tokens),
                                    std::move(loss_mask)};
  }
  return item;
}

}  // namespace

absl::StatusOr<IngestSummary> Ingest(const IngestOptions& options,
                                     const tokenizer::Tokenizer& tokenizer, store::Shard& shard,
                                     const std::function<void(const IngestProgress&)>& progress) {
  ASSIGN_OR_RETURN(const int64_t total_bytes, TotalInputBytes(options.read));
  if (options.read.format == Format::kChat) RETURN_IF_ERROR(tokenizer::CheckChatTokens(tokenizer));
  const int threads = std::max(1, options.threads);
  BoundedQueue<RawDocument> raw(4 * threads);
  BoundedQueue<Tokenized> tokenized(2 * options.batch_documents);
  std::atomic<int64_t> bytes_read{0};
  absl::Status read_status;
  std::atomic<int> workers_left{threads};

  std::thread reader([&] {
    read_status = ReadDocuments(
        options.read, [&](RawDocument document) { return raw.Push(std::move(document)); },
        [&](Problem problem) {
          return tokenized.Push(Tokenized{std::nullopt, std::move(problem)});
        },
        &bytes_read);
    raw.Close();
  });
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&] {
      while (std::optional<RawDocument> document = raw.Pop()) {
        if (!tokenized.Push(Tokenize(options, tokenizer, *std::move(document)))) break;
      }
      if (--workers_left == 0) tokenized.Close();
    });
  }

  IngestSummary summary;
  IngestProgress seen{total_bytes, 0, 0, 0, absl::ZeroDuration()};
  const absl::Time start = absl::Now();
  absl::Time next_report = start;
  std::vector<store::Document> batch;
  absl::Status status;
  auto flush = [&]() -> absl::Status {
    if (batch.empty()) return absl::OkStatus();
    ASSIGN_OR_RETURN(store::BatchResult written, shard.AddBatch(batch));
    summary.documents_added += written.added;
    summary.documents_duplicate += written.duplicates;
    summary.tokens_added += written.tokens_added;
    batch.clear();
    return absl::OkStatus();
  };
  while (status.ok()) {
    bool timed_out = false;
    std::optional<Tokenized> item = tokenized.PopFor(absl::Milliseconds(500), &timed_out);
    if (!item.has_value() && !timed_out) break;  // Every worker is done.
    if (item.has_value()) {
      if (item->problem.has_value()) {
        ++summary.documents_invalid;
        if (options.strict) {
          status = absl::InvalidArgumentError(
              absl::StrCat(item->problem->source, ": ", item->problem->reason));
        }
        if (static_cast<int>(summary.problems.size()) < options.max_listed_problems) {
          summary.problems.push_back(*std::move(item->problem));
        }
      } else if (item->too_short) {
        ++summary.documents_too_short;
        ++seen.documents;
      } else {
        ++seen.documents;
        seen.tokens += static_cast<int64_t>(item->document->tokens.size());
        batch.push_back(*std::move(item->document));
        if (static_cast<int>(batch.size()) >= options.batch_documents) status = flush();
      }
    }
    if (progress && absl::Now() >= next_report) {
      seen.input_bytes_read = bytes_read.load();
      seen.elapsed = absl::Now() - start;
      progress(seen);
      next_report = absl::Now() + absl::Milliseconds(500);
    }
  }
  if (status.ok()) status = flush();
  if (!status.ok()) {
    raw.Cancel();
    tokenized.Cancel();
  }
  reader.join();
  for (std::thread& worker : workers) worker.join();
  RETURN_IF_ERROR(status);
  RETURN_IF_ERROR(read_status);
  if (progress) {
    seen.input_bytes_read = bytes_read.load();
    seen.elapsed = absl::Now() - start;
    progress(seen);
  }
  return summary;
}

}  // namespace prolong::ingest

#include "datamixer/serve/datamixer_service.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/bounded_queue.h"
#include "common/grpc_status.h"
#include "common/security.h"
#include "common/status_macros.h"
#include "datamixer/serve/describe_plan.h"
#include "datamixer/store/stats.h"
#include "datamixer/tokenizer/chat_template.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"

namespace prolong::serve {
namespace {

// Documents per atomic write during Ingest.
constexpr size_t kIngestBatchDocuments = 256;
// Problems listed in an IngestSummary (all are counted).
constexpr int kListedProblems = 20;

grpc::Status InvalidArgument(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

void ToProto(const store::DomainStats& stats, v1::DomainStats* out) {
  out->set_name(stats.name);
  out->set_documents(stats.documents);
  out->set_tokens(stats.tokens);
  out->set_min_document_tokens(stats.min_length);
  out->set_max_document_tokens(stats.max_length);
  for (const store::LengthBucket& bucket : stats.histogram) {
    v1::LengthBucket* entry = out->add_length_histogram();
    entry->set_upper_bound_tokens(bucket.upper_bound);
    entry->set_documents(bucket.documents);
    entry->set_tokens(bucket.tokens);
  }
}

// One ingested document as the store keeps it, or why it cannot be.
absl::StatusOr<store::Document> ToStoreDocument(const v1::Document& document,
                                                const std::string& domain,
                                                const std::string& source,
                                                const tokenizer::Tokenizer& tokenizer) {
  store::Document out{domain, source, {}, ""};
  switch (document.content_case()) {
    case v1::Document::kText:
      out.tokens = tokenizer.Encode(document.text());
      break;
    case v1::Document::kTokens: {
      const v1::TokenizedDocument& tokens = document.tokens();
      for (int i = 0; i < tokens.token_ids_size(); ++i) {
        if (tokens.token_ids(i) >= tokenizer.vocab_size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("tokens.token_ids[", i, "]: ", tokens.token_ids(i),
                           " is outside the vocabulary (", tokenizer.vocab_size(), " ids)"));
        }
      }
      out.tokens.assign(tokens.token_ids().begin(), tokens.token_ids().end());
      if (!tokens.loss_mask().empty()) {
        if (tokens.loss_mask().size() != out.tokens.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("tokens.loss_mask: ", tokens.loss_mask().size(), " entries for ",
                           out.tokens.size(), " tokens"));
        }
        for (char bit : tokens.loss_mask()) out.loss_mask.push_back(bit != 0 ? 1 : 0);
      }
      break;
    }
    case v1::Document::kChat: {
      std::vector<tokenizer::ChatMessage> messages;
      for (const v1::ChatMessage& message : document.chat().messages()) {
        messages.push_back({message.role(), message.content()});
      }
      ASSIGN_OR_RETURN(tokenizer::ChatTokens chat, tokenizer::EncodeChat(tokenizer, messages));
      out.tokens = std::move(chat.tokens);
      out.loss_mask = std::move(chat.loss_mask);
      break;
    }
    default:
      return absl::InvalidArgumentError("no content: set text, tokens or chat");
  }
  if (out.tokens.empty()) return absl::InvalidArgumentError("empty document");
  return out;
}

}  // namespace

struct DataMixerService::Metrics {
  explicit Metrics(prometheus::Registry& registry)
      : tokens_served(prometheus::BuildCounter()
                          .Name("prolong_datamixer_tokens_served_total")
                          .Help("Tokens sent to trainer ranks, by domain.")
                          .Register(registry)),
        batches_served(prometheus::BuildCounter()
                           .Name("prolong_datamixer_batches_served_total")
                           .Help("Rank batches sent to trainer ranks.")
                           .Register(registry)
                           .Add({})),
        realized_share(prometheus::BuildGauge()
                           .Name("prolong_datamixer_realized_share")
                           .Help("Share of a plan's served tokens that came from each domain.")
                           .Register(registry)),
        target_share(prometheus::BuildGauge()
                         .Name("prolong_datamixer_target_share")
                         .Help("The stage's proportion for each domain of a plan.")
                         .Register(registry)),
        queue_batches(
            prometheus::BuildGauge()
                .Name("prolong_datamixer_prefetch_queue_batches")
                .Help("Batches read ahead and held for their clients (queued or about to be), "
                      "all streams.")
                .Register(registry)
                .Add({})),
        active_streams(prometheus::BuildGauge()
                           .Name("prolong_datamixer_active_streams")
                           .Help("StreamBatches calls in progress.")
                           .Register(registry)
                           .Add({})),
        read_seconds(prometheus::BuildHistogram()
                         .Name("prolong_datamixer_batch_read_seconds")
                         .Help("Time to read one rank batch from the store, in seconds.")
                         .Register(registry)
                         .Add({}, prometheus::Histogram::BucketBoundaries{
                                      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                      0.5, 1, 2.5, 5, 10})) {}

  prometheus::Family<prometheus::Counter>& tokens_served;
  prometheus::Counter& batches_served;
  prometheus::Family<prometheus::Gauge>& realized_share;
  prometheus::Family<prometheus::Gauge>& target_share;
  prometheus::Gauge& queue_batches;
  prometheus::Gauge& active_streams;
  prometheus::Histogram& read_seconds;
};

// A plan being served, with the per-domain metrics its streams update.
struct DataMixerService::PlanEntry {
  std::shared_ptr<BatchBuilder> builder;
  std::vector<prometheus::Counter*> tokens_served;
  std::vector<prometheus::Gauge*> realized_share;
  std::vector<prometheus::Gauge*> target_share;
  std::unique_ptr<std::atomic<int64_t>[]> served;
  std::atomic<int64_t> served_total{0};

  void Record(const std::vector<int64_t>& tokens_per_domain) {
    int64_t total = served_total.load();
    for (size_t d = 0; d < tokens_per_domain.size(); ++d) {
      tokens_served[d]->Increment(static_cast<double>(tokens_per_domain[d]));
      served[d] += tokens_per_domain[d];
      total = served_total += tokens_per_domain[d];
    }
    if (total == 0) return;
    for (size_t d = 0; d < tokens_per_domain.size(); ++d) {
      realized_share[d]->Set(static_cast<double>(served[d].load()) / static_cast<double>(total));
    }
  }
};

DataMixerService::DataMixerService(const DataMixerOptions& options, prometheus::Registry& registry)
    : options_(options),
      streams_(options.max_streams, "StreamBatches streams (--max-streams)"),
      ingests_(options.max_ingests, "Ingest calls (--max-ingests)"),
      metrics_(std::make_unique<Metrics>(registry)) {}

DataMixerService::~DataMixerService() = default;

absl::StatusOr<std::unique_ptr<DataMixerService>> DataMixerService::Create(
    const DataMixerOptions& options, prometheus::Registry& registry) {
  if (options.prefetch_batches < 1 || options.max_plans < 1 || options.max_streams < 1 ||
      options.max_ingests < 1) {
    return absl::InvalidArgumentError(
        "prefetch_batches, max_plans, max_streams and max_ingests must be at least 1");
  }
  std::unique_ptr<DataMixerService> service(new DataMixerService(options, registry));
  if (options.tokenizer != nullptr) {
    ASSIGN_OR_RETURN(service->store_, store::Store::OpenForWriting(
                                          options.store_dir, {options.tokenizer->fingerprint(),
                                                              options.tokenizer->vocab_size()}));
  } else {
    ASSIGN_OR_RETURN(service->store_, store::Store::OpenForReading(options.store_dir));
  }
  RETURN_IF_ERROR(service->CurrentIndex().status());
  return service;
}

absl::StatusOr<std::shared_ptr<const plan::DataIndex>> DataMixerService::CurrentIndex() {
  {
    absl::MutexLock lock(&mutex_);
    if (index_ != nullptr) return index_;
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const plan::DataIndex> index,
                   plan::LoadDataIndex(store_->shard()));
  absl::MutexLock lock(&mutex_);
  index_ = index;
  return index;
}

absl::StatusOr<std::vector<v1::DomainStats>> DataMixerService::Stats() {
  ASSIGN_OR_RETURN(const std::vector<store::DomainStats> stats,
                   store::ComputeDomainStats(store_->shard()));
  std::vector<v1::DomainStats> out(stats.size());
  for (size_t i = 0; i < stats.size(); ++i) ToProto(stats[i], &out[i]);
  return out;
}

grpc::Status DataMixerService::ListDomains(grpc::ServerContext*, const v1::ListDomainsRequest*,
                                           v1::ListDomainsResponse* response) {
  absl::StatusOr<std::vector<v1::DomainStats>> stats = Stats();
  if (!stats.ok()) return ToGrpcStatus(stats.status());
  for (v1::DomainStats& domain : *stats) *response->add_domains() = std::move(domain);
  return grpc::Status::OK;
}

grpc::Status DataMixerService::GetStats(grpc::ServerContext*, const v1::GetStatsRequest* request,
                                        v1::GetStatsResponse* response) {
  absl::StatusOr<std::shared_ptr<const plan::DataIndex>> index = CurrentIndex();
  if (!index.ok()) return ToGrpcStatus(index.status());
  for (int i = 0; i < request->domains_size(); ++i) {
    if ((*index)->Find(request->domains(i)) == nullptr) {
      return grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat("domains[", i, "]: no domain \"", request->domains(i), "\" in the store"));
    }
  }
  absl::StatusOr<std::vector<v1::DomainStats>> stats = Stats();
  if (!stats.ok()) return ToGrpcStatus(stats.status());
  for (v1::DomainStats& domain : *stats) {
    const bool wanted = request->domains().empty() ||
                        std::find(request->domains().begin(), request->domains().end(),
                                  domain.name()) != request->domains().end();
    if (wanted) *response->add_domains() = std::move(domain);
  }
  response->set_fingerprint((*index)->fingerprint);
  return grpc::Status::OK;
}

std::shared_ptr<DataMixerService::PlanEntry> DataMixerService::FindPlan(const std::string& id) {
  absl::MutexLock lock(&mutex_);
  auto it = plans_.find(id);
  if (it == plans_.end()) return nullptr;
  plan_use_order_.remove(id);
  plan_use_order_.push_back(id);
  return it->second;
}

grpc::Status DataMixerService::PlanStage(grpc::ServerContext*, const v1::PlanStageRequest* request,
                                         v1::StagePlan* response) {
  if (!request->has_stage()) return InvalidArgument("stage: required");
  if (request->describe_batches() < 0) {
    return InvalidArgument(
        absl::StrCat("describe_batches: must not be negative, got ", request->describe_batches()));
  }
  absl::StatusOr<std::shared_ptr<const plan::DataIndex>> index = CurrentIndex();
  if (!index.ok()) return ToGrpcStatus(index.status());
  if (!request->expected_fingerprint().empty() &&
      request->expected_fingerprint() != (*index)->fingerprint) {
    return grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        absl::StrCat("expected_fingerprint: the store holds data ", (*index)->fingerprint, ", not ",
                     request->expected_fingerprint(), "; a run resumes on its own data"));
  }
  const std::string id = plan::PlanId((*index)->fingerprint, request->stage(), request->seed());
  std::shared_ptr<PlanEntry> entry = FindPlan(id);
  if (entry == nullptr) {
    absl::StatusOr<std::shared_ptr<const plan::StagePlan>> plan =
        plan::StagePlan::Build(request->stage(), request->seed(), *index);
    if (!plan.ok()) return ToGrpcStatus(plan.status());
    entry = std::make_shared<PlanEntry>();
    entry->builder = std::make_shared<BatchBuilder>(*plan, &store_->shard());
    const size_t domains = (*plan)->domains().size();
    entry->served = std::make_unique<std::atomic<int64_t>[]>(domains);
    for (size_t d = 0; d < domains; ++d) {
      const std::string& name = (*plan)->domains()[d].data->name;
      const std::map<std::string, std::string> labels = {
          {"stage", request->stage().name()}, {"plan", id}, {"domain", name}};
      entry->served[d] = 0;
      entry->tokens_served.push_back(&metrics_->tokens_served.Add({{"domain", name}}));
      entry->realized_share.push_back(&metrics_->realized_share.Add(labels));
      entry->target_share.push_back(&metrics_->target_share.Add(labels));
      entry->target_share.back()->Set(request->stage().mixture(static_cast<int>(d)).proportion());
    }
    absl::MutexLock lock(&mutex_);
    if (auto it = plans_.find(id); it != plans_.end()) {
      entry = it->second;  // Built meanwhile by another call: keep the first.
    } else {
      plans_[id] = entry;
      plan_use_order_.push_back(id);
      while (static_cast<int>(plans_.size()) > options_.max_plans) {
        // Streams still using the evicted plan keep it alive; its gauges go.
        std::shared_ptr<PlanEntry>& evicted = plans_[plan_use_order_.front()];
        for (prometheus::Gauge* gauge : evicted->realized_share) {
          metrics_->realized_share.Remove(gauge);
        }
        for (prometheus::Gauge* gauge : evicted->target_share) {
          metrics_->target_share.Remove(gauge);
        }
        plans_.erase(plan_use_order_.front());
        plan_use_order_.pop_front();
      }
    }
  }
  *response = DescribePlan(entry->builder->plan(), request->describe_batches());
  return grpc::Status::OK;
}

grpc::Status DataMixerService::StreamBatches(grpc::ServerContext* context,
                                             const v1::StreamBatchesRequest* request,
                                             grpc::ServerWriter<v1::Batch>* writer) {
  std::shared_ptr<PlanEntry> entry = FindPlan(request->plan_id());
  if (entry == nullptr) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("plan_id: no plan \"", request->plan_id(),
                                     "\" here; call PlanStage with the stage and seed first"));
  }
  const BatchBuilder& builder = *entry->builder;
  const plan::Rank rank{request->rank().dp_rank(), request->rank().dp_size(),
                        request->rank().cp_rank(), request->rank().cp_size(),
                        request->rank().micro_batch_sequences()};
  if (absl::Status status = plan::ValidateRank(rank, builder.plan().sequences_per_batch());
      !status.ok()) {
    return ToGrpcStatus(status);
  }
  const int64_t steps = builder.plan().steps();
  const int64_t end_step = request->end_step() == 0 ? steps : request->end_step();
  if (request->start_step() < 0 || request->start_step() > steps) {
    return InvalidArgument(
        absl::StrCat("start_step: must be in [0, ", steps, "], got ", request->start_step()));
  }
  if (end_step < request->start_step() || end_step > steps) {
    return InvalidArgument(absl::StrCat("end_step: must be in [start_step, ", steps,
                                        "] or 0 for the end, got ", request->end_step()));
  }

  absl::StatusOr<CallSlots::Slot> slot = streams_.Take();
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  metrics_->active_streams.Increment();
  BoundedQueue<absl::StatusOr<BuiltBatch>> queue(options_.prefetch_batches);
  std::thread producer([&] {
    for (int64_t step = request->start_step(); step < end_step; ++step) {
      const absl::Time start = absl::Now();
      absl::StatusOr<BuiltBatch> batch = builder.Build(step, rank);
      metrics_->read_seconds.Observe(absl::ToDoubleSeconds(absl::Now() - start));
      const bool failed = !batch.ok();
      metrics_->queue_batches.Increment();
      if (!queue.Push(std::move(batch))) {  // The stream ended.
        metrics_->queue_batches.Decrement();
        return;
      }
      if (failed) break;
    }
    queue.Close();
  });
  grpc::Status status = grpc::Status::OK;
  while (std::optional<absl::StatusOr<BuiltBatch>> item = queue.Pop()) {
    metrics_->queue_batches.Decrement();
    if (!item->ok()) {
      status = ToGrpcStatus(item->status());
      break;
    }
    if (context->IsCancelled() || !writer->Write((*item)->batch)) {
      status = grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
      break;
    }
    metrics_->batches_served.Increment();
    entry->Record((*item)->tokens_per_domain);
  }
  queue.Cancel();
  producer.join();
  metrics_->queue_batches.Decrement(static_cast<double>(queue.size()));
  metrics_->active_streams.Decrement();
  return status;
}

grpc::Status DataMixerService::Ingest(grpc::ServerContext* context,
                                      grpc::ServerReader<v1::IngestRequest>* reader,
                                      v1::IngestSummary* summary) {
  const absl::Status allowed = CheckBearerToken(*context, options_.auth_token);
  if (!allowed.ok()) return ToGrpcStatus(allowed);
  absl::StatusOr<CallSlots::Slot> slot = ingests_.Take();
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  return ToGrpcStatus(IngestStream(reader, summary));
}

absl::Status DataMixerService::IngestStream(grpc::ServerReader<v1::IngestRequest>* reader,
                                            v1::IngestSummary* summary) {
  if (options_.tokenizer == nullptr) {
    return absl::FailedPreconditionError(
        "this datamixer serves its store read-only; start it with --tokenizer to ingest");
  }
  v1::IngestRequest request;
  if (!reader->Read(&request) || !request.has_header()) {
    return absl::InvalidArgumentError("header: the first message must be an IngestHeader");
  }
  const v1::IngestHeader header = request.header();
  if (header.min_tokens() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("header.min_tokens: must not be negative, got ", header.min_tokens()));
  }
  if (header.domain().empty() || header.domain().size() > 63 ||
      header.domain().find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") !=
          std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("header.domain: \"", header.domain(), "\" is not [a-z0-9_-]{1,63}"));
  }
  absl::MutexLock ingest_lock(&ingest_mutex_);
  summary->set_domain(header.domain());
  std::vector<store::Document> batch;
  // Whatever happens next, documents already written are in the index from now on.
  auto flush = [&]() -> absl::Status {
    if (batch.empty()) return absl::OkStatus();
    ASSIGN_OR_RETURN(const store::BatchResult result, store_->shard().AddBatch(batch));
    batch.clear();
    summary->set_documents_added(summary->documents_added() + result.added);
    summary->set_documents_duplicate(summary->documents_duplicate() + result.duplicates);
    summary->set_tokens_added(summary->tokens_added() + result.tokens_added);
    absl::MutexLock lock(&mutex_);
    if (result.added > 0) index_ = nullptr;
    return absl::OkStatus();
  };
  absl::Status status = absl::OkStatus();
  for (int64_t index = 1; status.ok() && reader->Read(&request); ++index) {
    if (!request.has_document()) {
      status = absl::InvalidArgumentError(
          absl::StrCat("message ", index, ": only the first message may be a header"));
      break;
    }
    const v1::Document& document = request.document();
    const std::string source =
        document.source().empty() ? absl::StrCat("document ", index) : document.source();
    absl::StatusOr<store::Document> converted =
        ToStoreDocument(document, header.domain(), source, *options_.tokenizer);
    if (!converted.ok()) {
      if (header.strict()) {
        status =
            absl::InvalidArgumentError(absl::StrCat(source, ": ", converted.status().message()));
        break;
      }
      summary->set_documents_invalid(summary->documents_invalid() + 1);
      if (summary->problems_size() < kListedProblems) {
        v1::IngestProblem* problem = summary->add_problems();
        problem->set_source(source);
        problem->set_reason(std::string(converted.status().message()));
      }
      continue;
    }
    if (static_cast<int64_t>(converted->tokens.size()) < header.min_tokens()) {
      summary->set_documents_too_short(summary->documents_too_short() + 1);
      continue;
    }
    batch.push_back(*std::move(converted));
    if (batch.size() >= kIngestBatchDocuments) status = flush();
  }
  if (status.ok()) status = flush();
  RETURN_IF_ERROR(status);
  ASSIGN_OR_RETURN(std::shared_ptr<const plan::DataIndex> index, CurrentIndex());
  summary->set_fingerprint(index->fingerprint);
  return absl::OkStatus();
}

}  // namespace prolong::serve

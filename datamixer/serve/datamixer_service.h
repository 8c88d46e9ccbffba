// The DataMixer gRPC service (proto/prolong/v1/datamixer.proto) over one store.
//
// Plans are kept by id (a bounded number, least recently used dropped first); a trainer calls
// PlanStage, which is idempotent, before StreamBatches, so a restarted datamixer serves the same
// batches again. Each StreamBatches call has its own producer thread that reads batches ahead
// into a bounded queue: a slow client blocks its producer, never grows the server's memory.
//
// Metrics (on the registry given):
//   prolong_datamixer_tokens_served_total{domain}          tokens sent to trainer ranks
//   prolong_datamixer_batches_served_total                 rank batches sent
//   prolong_datamixer_realized_share{stage,plan,domain}    share of a plan's served tokens
//   prolong_datamixer_target_share{stage,plan,domain}      the stage's proportion, to compare
//   prolong_datamixer_prefetch_queue_batches               batches read ahead and held, all
//                                                          streams (at most prefetch + 1 each)
//   prolong_datamixer_active_streams                       StreamBatches calls in progress
//   prolong_datamixer_batch_read_seconds                   time to read one rank batch
//
// Thread-safety: every method may be called from many gRPC threads at once.
#ifndef PROLONG_DATAMIXER_SERVE_DATAMIXER_SERVICE_H_
#define PROLONG_DATAMIXER_SERVE_DATAMIXER_SERVICE_H_

#include <list>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/call_slots.h"
#include "datamixer/plan/data_index.h"
#include "datamixer/serve/batch_builder.h"
#include "datamixer/store/store.h"
#include "datamixer/tokenizer/tokenizer.h"
#include "prolong/v1/datamixer.grpc.pb.h"
#include "prometheus/registry.h"

namespace prolong::serve {

struct DataMixerOptions {
  std::string store_dir;
  // Tokenizes ingested text and chats; with it the store is opened for writing (and created
  // if absent). Without it the store is served read-only and Ingest is refused.
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer;
  // Batches each stream reads ahead of what its client has taken.
  int prefetch_batches = 4;
  // Plans kept at once.
  int max_plans = 64;
  // StreamBatches calls served at once (one per trainer rank); beyond, RESOURCE_EXHAUSTED, which
  // trainers retry. Each holds a thread and up to prefetch_batches + 1 batches.
  int max_streams = 512;
  // Ingest calls open at once: they write one at a time, the others wait, each holding a
  // thread; beyond, RESOURCE_EXHAUSTED.
  int max_ingests = 8;
  // Ingest needs "authorization: Bearer <auth_token>" (common/security.h); empty: no token.
  std::string auth_token;
};

class DataMixerService final : public v1::DataMixer::Service {
 public:
  // NOT_FOUND for a read-only store that does not exist; FAILED_PRECONDITION for a store built
  // with another tokenizer or locked by another writer.
  static absl::StatusOr<std::unique_ptr<DataMixerService>> Create(const DataMixerOptions& options,
                                                                  prometheus::Registry& registry);
  ~DataMixerService() override;

  grpc::Status Ingest(grpc::ServerContext* context, grpc::ServerReader<v1::IngestRequest>* reader,
                      v1::IngestSummary* summary) override;
  grpc::Status ListDomains(grpc::ServerContext* context, const v1::ListDomainsRequest* request,
                           v1::ListDomainsResponse* response) override;
  grpc::Status GetStats(grpc::ServerContext* context, const v1::GetStatsRequest* request,
                        v1::GetStatsResponse* response) override;
  grpc::Status PlanStage(grpc::ServerContext* context, const v1::PlanStageRequest* request,
                         v1::StagePlan* response) override;
  grpc::Status StreamBatches(grpc::ServerContext* context, const v1::StreamBatchesRequest* request,
                             grpc::ServerWriter<v1::Batch>* writer) override;

 private:
  struct Metrics;
  struct PlanEntry;

  DataMixerService(const DataMixerOptions& options, prometheus::Registry& registry);

  // The index of the data as it is now (reloaded after an ingest added documents).
  absl::StatusOr<std::shared_ptr<const plan::DataIndex>> CurrentIndex();
  std::shared_ptr<PlanEntry> FindPlan(const std::string& id);
  absl::StatusOr<std::vector<v1::DomainStats>> Stats();
  absl::Status IngestStream(grpc::ServerReader<v1::IngestRequest>* reader,
                            v1::IngestSummary* summary);

  const DataMixerOptions options_;
  CallSlots streams_;
  CallSlots ingests_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Metrics> metrics_;
  // Ingests run one at a time: each reloads the index and fingerprint when it is done.
  absl::Mutex ingest_mutex_;
  absl::Mutex mutex_;
  std::shared_ptr<const plan::DataIndex> index_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::shared_ptr<PlanEntry>> plans_ ABSL_GUARDED_BY(mutex_);
  std::list<std::string> plan_use_order_ ABSL_GUARDED_BY(mutex_);  // Most recent last.
};

}  // namespace prolong::serve

#endif  // PROLONG_DATAMIXER_SERVE_DATAMIXER_SERVICE_H_

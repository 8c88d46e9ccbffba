// The datamixer as a real process over gRPC: what it streams equals what the library builds
// in-process, for every (dp, cp) rank at once; a stream resumed after the datamixer was killed
// continues bit for bit; a slow client holds its producer back; metrics report the realized
// mix; bad requests name their field; Ingest adds documents that plans then see.

#include <signal.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/http_get.h"
#include "common/status_matchers.h"
#include "datamixer/plan/data_index.h"
#include "datamixer/serve/batch_builder.h"
#include "datamixer/serve/test_corpus.h"
#include "datamixer/store/store.h"
#include "datamixer/tokenizer/test_ranks.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "prolong/v1/datamixer.grpc.pb.h"
#include "tests/capped_streams.h"
#include "tests/subprocess.h"
#include "trainer/worker/data_client.h"

namespace prolong {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;
using testing::Subprocess;

constexpr char kDatamixer[] = "services/datamixer/datamixer";

struct Datamixer {
  std::unique_ptr<Subprocess> process;
  std::string address;
  std::string metrics_address;
  std::unique_ptr<v1::DataMixer::Stub> stub;
};

// On a free port, unless `address` names one.
Datamixer StartDatamixer(const std::vector<std::string>& args,
                         const std::string& address = "127.0.0.1:0") {
  std::vector<std::string> argv = {kDatamixer, "--address=" + address,
                                   "--metrics-address=127.0.0.1:0"};
  argv.insert(argv.end(), args.begin(), args.end());
  Datamixer datamixer;
  auto process = Subprocess::Start(argv);
  EXPECT_OK(process);
  datamixer.process = *std::move(process);
  auto line = datamixer.process->ReadStdoutLine(absl::Seconds(30));
  EXPECT_OK(line) << datamixer.process->Stderr();
  if (!line.ok()) return datamixer;
  for (absl::string_view field : absl::StrSplit(*line, ' ')) {
    if (absl::ConsumePrefix(&field, "grpc=")) datamixer.address = std::string(field);
    if (absl::ConsumePrefix(&field, "metrics=")) datamixer.metrics_address = std::string(field);
  }
  datamixer.stub = v1::DataMixer::NewStub(
      grpc::CreateChannel(datamixer.address, grpc::InsecureChannelCredentials()));
  return datamixer;
}

v1::StagePlan Plan(v1::DataMixer::Stub& stub, const v1::StageSpec& stage, uint64_t seed) {
  grpc::ClientContext context;
  v1::PlanStageRequest request;
  *request.mutable_stage() = stage;
  request.set_seed(seed);
  v1::StagePlan plan;
  const grpc::Status status = stub.PlanStage(&context, request, &plan);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return plan;
}

// Every batch a rank receives from `start_step`, serialized; stops after `limit` batches.
std::vector<std::string> Stream(v1::DataMixer::Stub& stub, const std::string& plan_id, int dp_rank,
                                int dp_size, int cp_rank, int cp_size, int64_t start_step,
                                int64_t limit = -1) {
  grpc::ClientContext context;
  v1::StreamBatchesRequest request;
  request.set_plan_id(plan_id);
  request.mutable_rank()->set_dp_rank(dp_rank);
  request.mutable_rank()->set_dp_size(dp_size);
  request.mutable_rank()->set_cp_rank(cp_rank);
  request.mutable_rank()->set_cp_size(cp_size);
  request.set_start_step(start_step);
  auto reader = stub.StreamBatches(&context, request);
  std::vector<std::string> batches;
  v1::Batch batch;
  while ((limit < 0 || static_cast<int64_t>(batches.size()) < limit) && reader->Read(&batch)) {
    EXPECT_EQ(batch.step(), start_step + static_cast<int64_t>(batches.size()));
    batches.push_back(batch.SerializeAsString());
  }
  if (limit >= 0 && static_cast<int64_t>(batches.size()) == limit) {
    context.TryCancel();
  }
  const grpc::Status status = reader->Finish();
  if (limit < 0) {
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  return batches;
}

// A metric's value from a /metrics page; NaN if absent.
double MetricValue(const std::string& page, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (absl::ConsumePrefix(&line, series + " ")) {
      double value;
      if (absl::SimpleAtod(line, &value)) return value;
    }
  }
  return NAN;
}

class DatamixerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    corpus_ = serve::testing::WriteTestCorpus(prolong::testing::MakeTempDir() + "/store", 17);
  }

  // What a rank must receive, built in this process from the same store.
  std::vector<std::string> Expected(const v1::StageSpec& stage, uint64_t seed, plan::Rank rank) {
    auto store = store::Store::OpenForReading(corpus_.store_dir);
    EXPECT_OK(store);
    auto plan = plan::StagePlan::Build(stage, seed, *plan::LoadDataIndex((*store)->shard()));
    EXPECT_OK(plan);
    serve::BatchBuilder builder(*plan, &(*store)->shard());
    std::vector<std::string> batches;
    for (int64_t step = 0; step < (*plan)->steps(); ++step) {
      batches.push_back(builder.Build(step, rank)->batch.SerializeAsString());
    }
    return batches;
  }

  serve::testing::TestCorpus corpus_;
};

TEST_F(DatamixerServiceTest, ConcurrentRankStreamsEqualTheInProcessBatches) {
  Datamixer datamixer = StartDatamixer({"--store=" + corpus_.store_dir});
  ASSERT_NE(datamixer.stub, nullptr);
  const v1::StageSpec stage = serve::testing::TestStage(96, 8, 10);
  const v1::StagePlan plan = Plan(*datamixer.stub, stage, 5);
  ASSERT_EQ(plan.steps(), 10);

  // dp 2 x cp 2, and a plain single rank, all streaming at once.
  const std::vector<plan::Rank> ranks = {
      {0, 2, 0, 2}, {0, 2, 1, 2}, {1, 2, 0, 2}, {1, 2, 1, 2}, {0, 1, 0, 1}};
  std::vector<std::vector<std::string>> received(ranks.size());
  std::vector<std::thread> clients;
  for (size_t r = 0; r < ranks.size(); ++r) {
    clients.emplace_back([&, r] {
      received[r] = Stream(*datamixer.stub, plan.plan_id(), ranks[r].dp_rank, ranks[r].dp_size,
                           ranks[r].cp_rank, ranks[r].cp_size, 0);
    });
  }
  for (std::thread& client : clients) client.join();
  for (size_t r = 0; r < ranks.size(); ++r) {
    EXPECT_EQ(received[r], Expected(stage, 5, ranks[r])) << "rank " << r;
  }

  // The realized mix, reported per plan, equals the plan's: every batch was served once to
  // each of the dp x cp ranks and once to the single rank.
  auto metrics = HttpGet(datamixer.metrics_address, "/metrics");
  ASSERT_OK(metrics);
  for (const v1::DomainPlan& domain : plan.domains()) {
    const std::string labels = absl::StrCat("{domain=\"", domain.domain(), "\",plan=\"",
                                            plan.plan_id(), "\",stage=\"test\"}");
    const double realized = MetricValue(*metrics, "prolong_datamixer_realized_share" + labels);
    const double target = MetricValue(*metrics, "prolong_datamixer_target_share" + labels);
    EXPECT_NEAR(realized, static_cast<double>(domain.sequences()) / (10 * 8), 1e-9)
        << domain.domain() << "\n"
        << *metrics;
    EXPECT_NEAR(realized, target, 1.0 / 8) << domain.domain();
    EXPECT_EQ(MetricValue(*metrics, absl::StrCat("prolong_datamixer_tokens_served_total{domain=\"",
                                                 domain.domain(), "\"}")),
              2.0 * domain.tokens())
        << "the dp x cp ranks together and the single rank each got every token once";
  }
  EXPECT_EQ(MetricValue(*metrics, "prolong_datamixer_batches_served_total"), 5 * 10);
  EXPECT_EQ(MetricValue(*metrics, "prolong_datamixer_active_streams"), 0);
  EXPECT_EQ(MetricValue(*metrics, "prolong_datamixer_prefetch_queue_batches"), 0);
  EXPECT_EQ(MetricValue(*metrics, "prolong_datamixer_batch_read_seconds_count"), 5 * 10);
}

TEST_F(DatamixerServiceTest, AStreamResumedAfterTheDatamixerWasKilledContinuesBitForBit) {
  const v1::StageSpec stage = serve::testing::TestStage(64, 4, 30);
  const std::vector<std::string> expected = Expected(stage, 8, {1, 2, 1, 2});
  std::vector<std::string> received;
  std::string plan_id;
  for (int64_t stop : {7, 19}) {
    Datamixer datamixer = StartDatamixer({"--store=" + corpus_.store_dir});
    ASSERT_NE(datamixer.stub, nullptr);
    const v1::StagePlan plan = Plan(*datamixer.stub, stage, 8);
    if (!plan_id.empty()) {
      EXPECT_EQ(plan.plan_id(), plan_id) << "the same plan after a restart";
    }
    plan_id = plan.plan_id();
    const int64_t resume = static_cast<int64_t>(received.size());
    for (std::string& batch : Stream(*datamixer.stub, plan_id, 1, 2, 1, 2, resume, stop - resume)) {
      received.push_back(std::move(batch));
    }
    datamixer.process->Signal(SIGKILL);
  }
  Datamixer datamixer = StartDatamixer({"--store=" + corpus_.store_dir});
  ASSERT_NE(datamixer.stub, nullptr);
  Plan(*datamixer.stub, stage, 8);
  for (std::string& batch : Stream(*datamixer.stub, plan_id, 1, 2, 1, 2, 19)) {
    received.push_back(std::move(batch));
  }
  ASSERT_EQ(received.size(), expected.size());
  for (size_t step = 0; step < expected.size(); ++step) {
    ASSERT_EQ(received[step], expected[step]) << "step " << step;
  }
}

// A trainer's stream (worker::DataClient) outlives its datamixer: killed before the stream
// starts (so the stream must plan again on a datamixer that has lost every plan) and again
// mid-stream, and started again on the same address each time, it is resumed by the client
// itself, and the rank receives every step once, as the uninterrupted stream would have.
// (Whether the mid-stream kill breaks the call depends on how much gRPC had buffered.)
TEST_F(DatamixerServiceTest, ATrainersStreamResumesByItselfAcrossDatamixerRestarts) {
  const v1::StageSpec stage = serve::testing::TestStage(64, 4, 30);
  const std::vector<std::string> expected = Expected(stage, 8, {1, 2, 0, 2});
  Datamixer datamixer = StartDatamixer({"--store=" + corpus_.store_dir});
  ASSERT_NE(datamixer.stub, nullptr);
  const std::string address = datamixer.address;
  auto restart = [&] {
    datamixer.process->Signal(SIGKILL);
    ASSERT_OK(datamixer.process->Wait(absl::Seconds(30)));
    datamixer = StartDatamixer({"--store=" + corpus_.store_dir}, address);
    ASSERT_EQ(datamixer.address, address);
  };

  worker::DataClient client(address, absl::Seconds(60));
  absl::StatusOr<v1::StagePlan> plan = client.PlanStage(stage, 8);
  ASSERT_OK(plan);
  v1::RankSpec rank;
  rank.set_dp_rank(1);
  rank.set_dp_size(2);
  rank.set_cp_rank(0);
  rank.set_cp_size(2);
  datamixer.process->Signal(SIGKILL);
  ASSERT_OK(datamixer.process->Wait(absl::Seconds(30)));
  std::unique_ptr<worker::BatchStream> stream =
      client.StreamBatches(stage, 8, *plan, rank, /*start_step=*/0, /*read_ahead=*/1);
  datamixer = StartDatamixer({"--store=" + corpus_.store_dir}, address);
  ASSERT_EQ(datamixer.address, address);
  std::vector<std::string> received;
  for (int64_t step = 0; step < plan->steps(); ++step) {
    if (step == 17) restart();
    absl::StatusOr<v1::Batch> batch = stream->Next();
    ASSERT_OK(batch) << "step " << step;
    ASSERT_EQ(batch->step(), step);
    received.push_back(batch->SerializeAsString());
  }
  EXPECT_THAT(stream->Next(), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_EQ(received, expected);
  EXPECT_GE(stream->reconnects(), 1);
}

// A datamixer that hangs (stopped, its socket still open) is noticed: the trainer's Next fails
// with UNAVAILABLE naming the datamixer once it has waited for the timeout and the datamixer
// stayed unreachable for the timeout again, rather than never.
TEST_F(DatamixerServiceTest, AHungDatamixerIsNoticedWithinTheTimeout) {
  const v1::StageSpec stage = serve::testing::TestStage(64, 4, 30);
  Datamixer datamixer = StartDatamixer({"--store=" + corpus_.store_dir});
  ASSERT_NE(datamixer.stub, nullptr);
  const absl::Duration timeout = absl::Seconds(2);
  worker::DataClient client(datamixer.address, timeout);
  absl::StatusOr<v1::StagePlan> plan = client.PlanStage(stage, 8);
  ASSERT_OK(plan);
  v1::RankSpec rank;
  rank.set_dp_size(1);
  rank.set_cp_size(1);
  std::unique_ptr<worker::BatchStream> stream =
      client.StreamBatches(stage, 8, *plan, rank, /*start_step=*/0, /*read_ahead=*/1);
  ASSERT_OK(stream->Next());
  datamixer.process->Signal(SIGSTOP);
  const absl::Time stopped = absl::Now();
  // What the stopped datamixer had already sent still arrives, in order; then the error.
  int64_t steps = 1;
  absl::StatusOr<v1::Batch> batch = stream->Next();
  for (; batch.ok(); batch = stream->Next()) ASSERT_EQ(batch->step(), steps++);
  const absl::Status status = batch.status();
  const absl::Duration noticed = absl::Now() - stopped;
  datamixer.process->Signal(SIGCONT);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable,
                               HasSubstr("datamixer " + datamixer.address + ": gone for 2s")));
  EXPECT_LT(steps, plan->steps());
  EXPECT_LT(noticed, 4 * timeout + absl::Seconds(2));
}

// Streams beyond --max-streams are refused with RESOURCE_EXHAUSTED naming the limit, and a
// trainer's stream refused so waits, backing off, until a slot is free, then gets every step.
TEST_F(DatamixerServiceTest, StreamsBeyondTheLimitAreRefusedAndTrainersWaitForASlot) {
  Datamixer datamixer = StartDatamixer({"--store=" + corpus_.store_dir, "--max-streams=1"});
  ASSERT_NE(datamixer.stub, nullptr);
  const v1::StageSpec stage = serve::testing::TestStage(64, 4, 12);
  const v1::StagePlan plan = Plan(*datamixer.stub, stage, 3);
  v1::StreamBatchesRequest request;
  request.set_plan_id(plan.plan_id());
  request.mutable_rank()->set_dp_size(1);
  request.mutable_rank()->set_cp_size(1);

  // The one slot, held by a stream too large (170 MB) for gRPC to buffer: its call stays open.
  v1::StageSpec large_stage = serve::testing::TestStage(8192, 8, 200);
  large_stage.set_allow_repetition(true);
  large_stage.mutable_mixture(0)->set_packing(v1::PACKING_SHORT);  // No book fills 8192 tokens.
  v1::StreamBatchesRequest large = request;
  large.set_plan_id(Plan(*datamixer.stub, large_stage, 3).plan_id());
  auto held_context = std::make_unique<grpc::ClientContext>();
  auto held = datamixer.stub->StreamBatches(held_context.get(), large);
  v1::Batch batch;
  ASSERT_TRUE(held->Read(&batch));
  const grpc::Status refused =
      prolong::testing::StatusWithoutMessages<v1::Batch>([&](grpc::ClientContext& context) {
        return datamixer.stub->StreamBatches(&context, request);
      });
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(refused.error_message(),
            "already 1 StreamBatches streams (--max-streams) open, the most this server holds; "
            "retry later");

  worker::DataClient client(datamixer.address, absl::Seconds(60));
  std::unique_ptr<worker::BatchStream> stream =
      client.StreamBatches(stage, 3, plan, request.rank(), /*start_step=*/0, /*read_ahead=*/1);
  std::thread release([&] {
    absl::SleepFor(absl::Milliseconds(500));
    held_context->TryCancel();
    held->Finish();
  });
  for (int64_t step = 0; step < plan.steps(); ++step) {
    absl::StatusOr<v1::Batch> next = stream->Next();
    ASSERT_OK(next) << "step " << step;
    EXPECT_EQ(next->step(), step);
  }
  release.join();
  EXPECT_GE(stream->reconnects(), 1);
}

TEST_F(DatamixerServiceTest, ASlowClientHoldsItsProducerBack) {
  Datamixer datamixer = StartDatamixer({"--store=" + corpus_.store_dir, "--prefetch-batches=3"});
  ASSERT_NE(datamixer.stub, nullptr);
  // 200 steps of 8 x 8192 tokens: about 850 KB a batch, 170 MB in all.
  v1::StageSpec stage = serve::testing::TestStage(8192, 8, 200);
  stage.set_allow_repetition(true);
  stage.mutable_mixture(0)->set_packing(v1::PACKING_SHORT);  // No book fills 2048 tokens.
  const v1::StagePlan plan = Plan(*datamixer.stub, stage, 1);
  grpc::ClientContext context;
  v1::StreamBatchesRequest request;
  request.set_plan_id(plan.plan_id());
  request.mutable_rank()->set_dp_size(1);
  request.mutable_rank()->set_cp_size(1);
  auto reader = datamixer.stub->StreamBatches(&context, request);
  v1::Batch batch;
  ASSERT_TRUE(reader->Read(&batch));
  absl::SleepFor(absl::Seconds(2));  // The client stalls; the server must stop reading ahead.
  auto metrics = HttpGet(datamixer.metrics_address, "/metrics");
  ASSERT_OK(metrics);
  const double read = MetricValue(*metrics, "prolong_datamixer_batch_read_seconds_count");
  // Three queued and one waiting to be queued.
  EXPECT_EQ(MetricValue(*metrics, "prolong_datamixer_prefetch_queue_batches"), 4);
  EXPECT_EQ(MetricValue(*metrics, "prolong_datamixer_active_streams"), 1);
  // Besides those: one taken, one being written, and what the HTTP/2 flow-control windows and
  // socket buffers hold (a few MB).
  EXPECT_LE(read, 30) << "the producer ran ahead of a stalled client";
  absl::SleepFor(absl::Seconds(1));
  metrics = HttpGet(datamixer.metrics_address, "/metrics");
  ASSERT_OK(metrics);
  EXPECT_EQ(MetricValue(*metrics, "prolong_datamixer_batch_read_seconds_count"), read)
      << "the producer is still reading for a stalled client";
  context.TryCancel();
  reader->Finish();
}

TEST_F(DatamixerServiceTest, BadRequestsNameTheField) {
  Datamixer datamixer = StartDatamixer({"--store=" + corpus_.store_dir});
  ASSERT_NE(datamixer.stub, nullptr);
  auto plan_status = [&](const v1::StageSpec& stage, const std::string& fingerprint = "") {
    grpc::ClientContext context;
    v1::PlanStageRequest request;
    *request.mutable_stage() = stage;
    request.set_expected_fingerprint(fingerprint);
    v1::StagePlan plan;
    const grpc::Status status = datamixer.stub->PlanStage(&context, request, &plan);
    return std::pair(status.error_code(), status.error_message());
  };
  v1::StageSpec stage = serve::testing::TestStage(64, 4, 3);
  stage.mutable_mixture(1)->set_domain("poems");
  EXPECT_EQ(plan_status(stage),
            std::pair(grpc::StatusCode::NOT_FOUND,
                      std::string("stage.mixture[1].domain: no domain \"poems\" in the data; it "
                                  "has books, chat, web")));
  stage = serve::testing::TestStage(64, 4, 3);
  stage.mutable_mixture(0)->set_proportion(0.3);
  EXPECT_EQ(plan_status(stage).first, grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(plan_status(stage).second, "stage.mixture: proportions sum to"));
  stage.mutable_mixture(0)->set_proportion(-0.25);
  EXPECT_EQ(plan_status(stage).second, "stage.mixture[0].proportion: must be in (0, 1], got -0.25");
  stage = serve::testing::TestStage(1, 4, 3);
  EXPECT_EQ(plan_status(stage), std::pair(grpc::StatusCode::INVALID_ARGUMENT,
                                          std::string("stage.seq_len: must be at least 2, got 1")));
  stage = serve::testing::TestStage(64, 4, 3);
  EXPECT_EQ(plan_status(stage, "0123").first, grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StartsWith(plan_status(stage, "0123").second, "expected_fingerprint: "));

  auto stream_status = [&](const std::string& plan_id, int dp_rank, int dp_size, int64_t start) {
    grpc::ClientContext context;
    v1::StreamBatchesRequest request;
    request.set_plan_id(plan_id);
    request.mutable_rank()->set_dp_rank(dp_rank);
    request.mutable_rank()->set_dp_size(dp_size);
    request.mutable_rank()->set_cp_size(1);
    request.set_start_step(start);
    auto reader = datamixer.stub->StreamBatches(&context, request);
    v1::Batch batch;
    while (reader->Read(&batch)) {
    }
    const grpc::Status status = reader->Finish();
    return std::pair(status.error_code(), status.error_message());
  };
  EXPECT_EQ(stream_status("nope", 0, 1, 0).first, grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(absl::StartsWith(stream_status("nope", 0, 1, 0).second, "plan_id: no plan \"nope\""));
  const std::string id = Plan(*datamixer.stub, serve::testing::TestStage(64, 4, 3), 0).plan_id();
  EXPECT_EQ(stream_status(id, 2, 2, 0),
            std::pair(grpc::StatusCode::INVALID_ARGUMENT,
                      std::string("rank.dp_rank: must be in [0, 2), got 2")));
  EXPECT_EQ(stream_status(id, 0, 1, 4),
            std::pair(grpc::StatusCode::INVALID_ARGUMENT,
                      std::string("start_step: must be in [0, 3], got 4")));
  EXPECT_EQ(stream_status(id, 0, 1, 3).first, grpc::StatusCode::OK) << "nothing left to send";

  grpc::ClientContext context;
  v1::GetStatsRequest request;
  request.add_domains("web");
  request.add_domains("poems");
  v1::GetStatsResponse stats;
  const grpc::Status status = datamixer.stub->GetStats(&context, request, &stats);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "domains[1]: no domain \"poems\" in the store");
}

// Ingest calls beyond --max-ingests are refused while one is open, and served once it ends.
TEST_F(DatamixerServiceTest, IngestsBeyondTheLimitAreRefused) {
  const std::string dir = prolong::testing::MakeTempDir();
  const std::string ranks = dir + "/bytes.tiktoken";
  { std::ofstream(ranks) << tokenizer::ByteRankFile(); }
  Datamixer datamixer = StartDatamixer({"--store=" + dir + "/store", "--tokenizer=" + ranks,
                                        "--preset=cl100k_base", "--max-ingests=1"});
  ASSERT_NE(datamixer.stub, nullptr);
  v1::IngestRequest header;
  header.mutable_header()->set_domain("web");
  // A call with only a header: nothing to add.
  auto probe = [&] {
    grpc::ClientContext context;
    v1::IngestSummary summary;
    auto writer = datamixer.stub->Ingest(&context, &summary);
    writer->Write(header);
    writer->WritesDone();
    return writer->Finish();
  };
  grpc::ClientContext held_context;
  v1::IngestSummary held_summary;
  auto held = datamixer.stub->Ingest(&held_context, &held_summary);
  ASSERT_TRUE(held->Write(header));
  // Probes go through until the held call's handler has taken the one slot.
  grpc::Status refused;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(10);
       refused.ok() && absl::Now() < deadline; absl::SleepFor(absl::Milliseconds(20))) {
    refused = probe();
  }
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(refused.error_message(),
            "already 1 Ingest calls (--max-ingests) open, the most this server holds; retry "
            "later");
  held->WritesDone();
  EXPECT_TRUE(held->Finish().ok());
  const grpc::Status after = probe();
  EXPECT_TRUE(after.ok()) << after.error_message();
}

TEST_F(DatamixerServiceTest, IngestAddsDocumentsThatPlansThenSee) {
  const std::string dir = prolong::testing::MakeTempDir();
  const std::string ranks = dir + "/bytes.tiktoken";
  { std::ofstream(ranks) << tokenizer::ByteRankFile(); }
  Datamixer datamixer =
      StartDatamixer({"--store=" + dir + "/store", "--tokenizer=" + ranks, "--preset=cl100k_base"});
  ASSERT_NE(datamixer.stub, nullptr);
  auto ingest = [&](const std::vector<v1::IngestRequest>& messages, v1::IngestSummary* summary) {
    grpc::ClientContext context;
    auto writer = datamixer.stub->Ingest(&context, summary);
    for (const v1::IngestRequest& message : messages) writer->Write(message);
    writer->WritesDone();
    return writer->Finish();
  };
  std::vector<v1::IngestRequest> messages(1);
  messages[0].mutable_header()->set_domain("web");
  messages[0].mutable_header()->set_min_tokens(3);
  auto text = [&](const std::string& source, const std::string& content) {
    v1::IngestRequest message;
    message.mutable_document()->set_source(source);
    message.mutable_document()->set_text(content);
    messages.push_back(message);
  };
  text("a", "first document, long enough");
  text("b", "second one");
  text("a-again", "first document, long enough");
  text("short", "hi");
  v1::IngestRequest tokens;
  tokens.mutable_document()->set_source("pretokenized");
  for (uint32_t id : {1, 2, 3, 200000})
    tokens.mutable_document()->mutable_tokens()->add_token_ids(id);
  messages.push_back(tokens);
  v1::IngestSummary summary;
  grpc::Status status = ingest(messages, &summary);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(summary.documents_added(), 2);
  EXPECT_EQ(summary.documents_duplicate(), 1);
  EXPECT_EQ(summary.documents_too_short(), 1);
  EXPECT_EQ(summary.documents_invalid(), 1);
  ASSERT_EQ(summary.problems_size(), 1);
  EXPECT_EQ(summary.problems(0).source(), "pretokenized");
  EXPECT_TRUE(absl::StartsWith(summary.problems(0).reason(),
                               "tokens.token_ids[3]: 200000 is outside the vocabulary ("))
      << summary.problems(0).reason();

  grpc::ClientContext stats_context;
  v1::GetStatsResponse stats;
  ASSERT_TRUE(datamixer.stub->GetStats(&stats_context, v1::GetStatsRequest(), &stats).ok());
  EXPECT_EQ(stats.fingerprint(), summary.fingerprint());
  ASSERT_EQ(stats.domains_size(), 1);
  EXPECT_EQ(stats.domains(0).documents(), 2);
  EXPECT_EQ(stats.domains(0).tokens(), 27 + 10);

  // Strict: the first bad document ends the call, naming it.
  messages[0].mutable_header()->set_strict(true);
  v1::IngestSummary strict_summary;
  status = ingest(messages, &strict_summary);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(
      absl::StartsWith(status.error_message(),
                       "pretokenized: tokens.token_ids[3]: 200000 is outside the vocabulary"))
      << status.error_message();

  // A header first, and only first.
  v1::IngestSummary ignored;
  status = ingest({messages[1]}, &ignored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "header: the first message must be an IngestHeader");
}

TEST_F(DatamixerServiceTest, AReadOnlyDatamixerRefusesIngest) {
  Datamixer datamixer = StartDatamixer({"--store=" + corpus_.store_dir});
  ASSERT_NE(datamixer.stub, nullptr);
  grpc::ClientContext context;
  v1::IngestSummary summary;
  auto writer = datamixer.stub->Ingest(&context, &summary);
  v1::IngestRequest header;
  header.mutable_header()->set_domain("web");
  writer->Write(header);
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "--tokenizer")) << status.error_message();
}

}  // namespace
}  // namespace prolong

// StreamBatches throughput over loopback against a bare gRPC stream of the same bytes.
//
// Builds a store of long documents, starts the datamixer binary on it (a separate process),
// plans a stage at --seq_len and has --clients data-parallel ranks stream every step at once;
// then starts this binary in --bare mode (a gRPC server that writes one prebuilt Batch of the
// same size, with no store, plan or copying behind it) and streams the same number of batches
// the same way. Rounds alternate; prints each round, the medians, the ratio and the p50/p99 time
// between consecutive batches at a client.
//
//   bazel run //tools/bench:stream_batches_benchmark -- --datamixer=PATH [--rounds=3]

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/cli.h"
#include "common/file.h"
#include "common/log.h"
#include "common/server.h"
#include "datamixer/store/store.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "prolong/v1/datamixer.grpc.pb.h"
#include "tests/subprocess.h"

namespace prolong {
namespace {

struct Flags {
  std::string datamixer;
  int64_t seq_len = 65536;
  int clients = 4;
  int64_t steps = 100;
  int rounds = 3;
  std::string bare;
};

using testing::Subprocess;

// Writes one prebuilt batch `end_step - start_step` times: the cost of gRPC and protobuf alone.
class BareStream final : public v1::DataMixer::Service {
 public:
  explicit BareStream(v1::Batch batch) : batch_(std::move(batch)) {}
  grpc::Status StreamBatches(grpc::ServerContext*, const v1::StreamBatchesRequest* request,
                             grpc::ServerWriter<v1::Batch>* writer) override {
    v1::Batch batch = batch_;
    for (int64_t step = request->start_step(); step < request->end_step(); ++step) {
      batch.set_step(step);
      if (!writer->Write(batch)) break;
    }
    return grpc::Status::OK;
  }

 private:
  const v1::Batch batch_;
};

// Its own connection, as each trainer rank (a process) has.
std::unique_ptr<v1::DataMixer::Stub> Connect(const std::string& address) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(-1);
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return v1::DataMixer::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), arguments));
}

struct Server {
  std::unique_ptr<Subprocess> process;
  std::string address;
  std::unique_ptr<v1::DataMixer::Stub> stub;
};

Server Start(std::vector<std::string> argv) {
  argv.push_back("--address=127.0.0.1:0");
  argv.push_back("--metrics-address=off");
  Server server;
  server.process = *Subprocess::Start(argv);
  absl::StatusOr<std::string> line = server.process->ReadStdoutLine(absl::Seconds(60));
  PROLONG_CHECK(line.ok()) << line.status() << server.process->Stderr();
  for (absl::string_view field : absl::StrSplit(*line, ' ')) {
    if (absl::ConsumePrefix(&field, "grpc=")) server.address = std::string(field);
  }
  server.stub = Connect(server.address);
  return server;
}

struct Round {
  double tokens_per_second = 0;
  std::vector<double> gaps_ms;  // Between consecutive batches at a client.
};

// Every client streams its rank's batches of `steps` steps at once.
Round StreamAll(const std::string& address, const std::string& plan_id, int clients,
                int64_t steps) {
  std::atomic<int64_t> tokens{0};
  std::vector<std::vector<double>> gaps(clients);
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::unique_ptr<v1::DataMixer::Stub> stub = Connect(address);
      grpc::ClientContext context;
      v1::StreamBatchesRequest request;
      request.set_plan_id(plan_id);
      request.mutable_rank()->set_dp_rank(c);
      request.mutable_rank()->set_dp_size(clients);
      request.mutable_rank()->set_cp_size(1);
      request.set_end_step(steps);
      auto reader = stub->StreamBatches(&context, request);
      v1::Batch batch;
      absl::Time last = absl::Now();
      while (reader->Read(&batch)) {
        const absl::Time now = absl::Now();
        gaps[c].push_back(absl::ToDoubleMilliseconds(now - last));
        last = now;
        for (const v1::SequenceSlice& sequence : batch.sequences()) {
          for (const v1::TokenSpan& span : sequence.spans()) tokens += span.token_ids().size() / 4;
        }
      }
      const grpc::Status status = reader->Finish();
      PROLONG_CHECK(status.ok()) << status.error_message();
    });
  }
  for (std::thread& thread : threads) thread.join();
  Round round;
  round.tokens_per_second =
      static_cast<double>(tokens.load()) / absl::ToDoubleSeconds(absl::Now() - start);
  for (const auto& client : gaps) {
    round.gaps_ms.insert(round.gaps_ms.end(), client.begin() + 1, client.end());
  }
  return round;
}

double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<size_t>(p * values.size()))];
}

double Median(std::vector<double> values) { return Percentile(std::move(values), 0.5); }

int RunBare(const std::string& batch_path, const ServerOptions& options) {
  v1::Batch batch;
  PROLONG_CHECK(batch.ParseFromString(*ReadFile(batch_path)));
  BareStream service(std::move(batch));
  return RunServerUntilSignal(options, {Hosted<v1::DataMixer>(&service)},
                              std::make_shared<prometheus::Registry>());
}

int Run(const char* self, const Flags& flags) {
  const int64_t seq_len = flags.seq_len;
  const int clients = flags.clients;
  const int64_t steps = flags.steps;
  const std::string dir = prolong::testing::MakeTempDir();

  // Long documents of 4 sequences each, token ids below 128K (Llama 3's vocabulary).
  const int64_t documents = (clients * steps + 3) / 4;
  {
    auto store = store::Store::OpenForWriting(dir + "/store", {"bench", 128256});
    PROLONG_CHECK(store.ok()) << store.status();
    std::mt19937_64 rng(1);
    for (int64_t d = 0; d < documents; d += 16) {
      std::vector<store::Document> batch;
      for (int64_t i = d; i < std::min(documents, d + 16); ++i) {
        store::Document document{"books", absl::StrCat("doc", i), {}, ""};
        document.tokens.resize(4 * seq_len);
        for (uint32_t& token : document.tokens) token = static_cast<uint32_t>(rng() % 128000);
        batch.push_back(std::move(document));
      }
      PROLONG_CHECK((*store)->shard().AddBatch(batch).ok());
    }
  }
  std::printf(
      "store: %ld documents of %ld tokens; %d clients x %ld steps of one %ld-token "
      "sequence\n",
      documents, 4 * seq_len, clients, steps, seq_len);

  v1::PlanStageRequest plan_request;
  v1::StageSpec* stage = plan_request.mutable_stage();
  stage->set_name("bench");
  stage->set_seq_len(seq_len);
  stage->set_batch_tokens(seq_len * clients);
  stage->set_total_tokens(seq_len * clients * steps);
  v1::MixtureComponent* books = stage->add_mixture();
  books->set_domain("books");
  books->set_proportion(1);
  books->set_packing(v1::PACKING_LONG);

  std::vector<double> ours, bare, ours_p50, ours_p99, bare_p50, bare_p99;
  for (int r = 0; r < flags.rounds; ++r) {
    std::string plan_id;
    {
      Server datamixer = Start({flags.datamixer, "--store=" + dir + "/store"});
      grpc::ClientContext context;
      v1::StagePlan plan;
      PROLONG_CHECK(datamixer.stub->PlanStage(&context, plan_request, &plan).ok());
      plan_id = plan.plan_id();
      const Round round = StreamAll(datamixer.address, plan_id, clients, steps);
      ours.push_back(round.tokens_per_second / 1e6);
      ours_p50.push_back(Percentile(round.gaps_ms, 0.5));
      ours_p99.push_back(Percentile(round.gaps_ms, 0.99));

      // The bare server streams a real batch of this plan.
      grpc::ClientContext one_context;
      v1::StreamBatchesRequest one;
      one.set_plan_id(plan_id);
      one.mutable_rank()->set_dp_size(clients);
      one.mutable_rank()->set_cp_size(1);
      one.set_end_step(1);
      auto reader = datamixer.stub->StreamBatches(&one_context, one);
      v1::Batch batch;
      PROLONG_CHECK(reader->Read(&batch));
      while (reader->Read(&batch)) {
      }
      PROLONG_CHECK(reader->Finish().ok());
      PROLONG_CHECK(WriteFileAtomically(dir + "/batch.pb", batch.SerializeAsString()).ok());
      datamixer.process->Signal(SIGTERM);
      datamixer.process->Wait(absl::Seconds(10)).IgnoreError();
    }
    {
      Server server = Start({self, "--bare=" + dir + "/batch.pb"});
      const Round round = StreamAll(server.address, plan_id, clients, steps);
      bare.push_back(round.tokens_per_second / 1e6);
      bare_p50.push_back(Percentile(round.gaps_ms, 0.5));
      bare_p99.push_back(Percentile(round.gaps_ms, 0.99));
      server.process->Signal(SIGTERM);
      server.process->Wait(absl::Seconds(10)).IgnoreError();
    }
    std::printf(
        "round %d: datamixer %.1f M tokens/s (gap p50 %.2f ms, p99 %.2f ms), bare gRPC %.1f M "
        "tokens/s (p50 %.2f ms, p99 %.2f ms)\n",
        r + 1, ours.back(), ours_p50.back(), ours_p99.back(), bare.back(), bare_p50.back(),
        bare_p99.back());
  }
  std::printf(
      "median: datamixer %.1f M tokens/s, bare gRPC %.1f M tokens/s, ratio %.2f; batch gap p99 "
      "%.2f ms (bare %.2f ms)\n",
      Median(ours), Median(bare), Median(ours) / Median(bare), Median(ours_p99), Median(bare_p99));
  return 0;
}

}  // namespace
}  // namespace prolong

int main(int argc, char** argv) {
  prolong::Flags flags;
  CLI::App app("StreamBatches over loopback against a bare gRPC stream of the same bytes.");
  prolong::ConfigureCli(app);
  app.add_option("--datamixer", flags.datamixer, "Path of the datamixer binary");
  app.add_option("--seq_len", flags.seq_len, "Tokens per sequence")->capture_default_str();
  app.add_option("--clients", flags.clients, "Concurrent streams (data-parallel ranks)")
      ->capture_default_str();
  app.add_option("--steps", flags.steps, "Steps each client streams")->capture_default_str();
  app.add_option("--rounds", flags.rounds, "Rounds of (datamixer, bare)")->capture_default_str();
  app.add_option("--bare", flags.bare, "Internal: serve the Batch in this file, bare");
  prolong::ServerOptions bare_server;
  bare_server.component = "bare";
  prolong::AddServerFlags(app, bare_server);
  if (auto exit_code = prolong::ParseCommandLine(app, argc, argv)) return *exit_code;
  if (!flags.bare.empty()) return prolong::RunBare(flags.bare, bare_server);
  PROLONG_CHECK(!flags.datamixer.empty()) << "--datamixer is required";
  return prolong::Run(argv[0], flags);
}

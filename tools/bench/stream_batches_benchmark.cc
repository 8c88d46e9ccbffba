// StreamBatches throughput over loopback against a bare gRPC stream of the same bytes.
//
// Builds a store of long documents (--document_tokens each) in each of --layouts, starts the
// datamixer binary on it (a separate process), plans a stage at --seq_len and has --clients
// data-parallel ranks stream every step at once; then starts this binary in --bare mode (a gRPC
// server that writes one prebuilt Batch of the same size, with no store, plan or copying behind
// it) and streams the same number of batches the same way. Rounds alternate (each layout, then
// bare); prints each round, the medians, the ratios and the p50/p99 time between consecutive
// batches at a client.
//
// Layouts: "chunked" stores long documents in chunks (the shard's default), "whole" as one value
// each (the layout before chunking, which reads a whole document for each of its sequences).
//
//   bazel run //tools/bench:stream_batches_benchmark -- --datamixer=PATH [--rounds=3]
//       [--seq_len=524288 --document_tokens=1048576] [--layouts=whole,chunked]

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
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/cli.h"
#include "common/file.h"
#include "common/log.h"
#include "common/server.h"
#include "datamixer/store/shard.h"
#include "datamixer/store/store.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "prolong/v1/datamixer.grpc.pb.h"
#include "rocksdb/perf_context.h"
#include "rocksdb/perf_level.h"
#include "tests/subprocess.h"

namespace prolong {
namespace {

struct Flags {
  std::string datamixer;
  int64_t seq_len = 65536;
  int64_t document_tokens = 0;  // 0: 4 sequences' worth.
  std::vector<std::string> layouts = {"chunked"};
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

// The store alone, in this process and one thread: every sequence-long slice of every document
// read in turn, as a plan walks them, with what RocksDB read from blob files for it.
void ReportStoreReads(const std::string& dir, const std::string& layout, int64_t seq_len) {
  auto store = store::Store::OpenForReading(dir);
  PROLONG_CHECK(store.ok()) << store.status();
  std::vector<store::IndexEntry> entries;
  PROLONG_CHECK(
      (*store)
          ->shard()
          .ScanIndex("books", [&](const store::IndexEntry& entry) { entries.push_back(entry); })
          .ok());
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
  rocksdb::get_perf_context()->Reset();
  int64_t tokens = 0;
  const absl::Time start = absl::Now();
  for (const store::IndexEntry& entry : entries) {
    for (int64_t offset = 0; offset + seq_len <= entry.length; offset += seq_len) {
      auto slice = (*store)->shard().ReadTokens("books", entry.id, offset, seq_len);
      PROLONG_CHECK(slice.ok()) << slice.status();
      tokens += static_cast<int64_t>(slice->size());
    }
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const uint64_t bytes = rocksdb::get_perf_context()->blob_read_byte;
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  std::printf(
      "store reads, %s: %.1f M tokens/s in one thread; %.1f MB read from blob files, %.2f bytes "
      "a token served\n",
      layout.c_str(), static_cast<double>(tokens) / seconds / 1e6, static_cast<double>(bytes) / 1e6,
      static_cast<double>(bytes) / static_cast<double>(tokens));
}

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

  const int64_t document_tokens = flags.document_tokens > 0 ? flags.document_tokens : 4 * seq_len;
  PROLONG_CHECK(document_tokens >= seq_len) << "--document_tokens must hold a sequence";
  const int64_t per_document = document_tokens / seq_len;

  // One store per layout, the same documents in each; token ids below 128K (Llama 3's
  // vocabulary), at random, so 3 bytes a token that compress little.
  const int64_t documents = (clients * steps + per_document - 1) / per_document;
  {
    std::vector<std::unique_ptr<store::Store>> stores;
    for (const std::string& layout : flags.layouts) {
      store::ShardOptions options;
      PROLONG_CHECK(layout == "chunked" || layout == "whole") << "unknown layout " << layout;
      if (layout == "whole") options.chunk_tokens = 0;
      auto store = store::Store::OpenForWriting(dir + "/" + layout, {"bench", 128256}, options);
      PROLONG_CHECK(store.ok()) << store.status();
      stores.push_back(*std::move(store));
    }
    std::mt19937_64 rng(1);
    const int64_t documents_per_batch = std::max<int64_t>(1, (16 << 20) / document_tokens);
    for (int64_t d = 0; d < documents; d += documents_per_batch) {
      std::vector<store::Document> batch;
      for (int64_t i = d; i < std::min(documents, d + documents_per_batch); ++i) {
        store::Document document{"books", absl::StrCat("doc", i), {}, ""};
        document.tokens.resize(document_tokens);
        for (uint32_t& token : document.tokens) token = static_cast<uint32_t>(rng() % 128000);
        batch.push_back(std::move(document));
      }
      for (auto& store : stores) PROLONG_CHECK(store->shard().AddBatch(batch).ok());
    }
  }
  std::printf(
      "store: %ld documents of %ld tokens; %d clients x %ld steps of one %ld-token "
      "sequence\n",
      documents, document_tokens, clients, steps, seq_len);

  for (const std::string& layout : flags.layouts)
    ReportStoreReads(dir + "/" + layout, layout, seq_len);

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

  struct Series {
    std::string name;
    std::vector<double> tokens_per_second, gap_p50, gap_p99;

    void Add(const Round& round) {
      tokens_per_second.push_back(round.tokens_per_second / 1e6);
      gap_p50.push_back(Percentile(round.gaps_ms, 0.5));
      gap_p99.push_back(Percentile(round.gaps_ms, 0.99));
    }
    std::string Last() const {
      return absl::StrFormat("%s %.1f M tokens/s (gap p50 %.2f ms, p99 %.2f ms)", name,
                             tokens_per_second.back(), gap_p50.back(), gap_p99.back());
    }
  };
  std::vector<Series> ours;
  for (const std::string& layout : flags.layouts) ours.push_back({"datamixer " + layout});
  Series bare{"bare gRPC"};
  for (int r = 0; r < flags.rounds; ++r) {
    std::string plan_id;
    std::string line = absl::StrCat("round ", r + 1, ":");
    for (size_t k = 0; k < flags.layouts.size(); ++k) {
      // Every other round in reverse order, so that going first or last favours no layout.
      const size_t l = r % 2 == 0 ? k : flags.layouts.size() - 1 - k;
      Server datamixer = Start({flags.datamixer, "--store=" + dir + "/" + flags.layouts[l]});
      grpc::ClientContext context;
      v1::StagePlan plan;
      PROLONG_CHECK(datamixer.stub->PlanStage(&context, plan_request, &plan).ok());
      plan_id = plan.plan_id();
      ours[l].Add(StreamAll(datamixer.address, plan_id, clients, steps));
      absl::StrAppend(&line, " ", ours[l].Last(), ";");

      // The bare server streams a real batch of this plan (the same in every layout).
      if (k == 0) {
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
      }
      datamixer.process->Signal(SIGTERM);
      datamixer.process->Wait(absl::Seconds(10)).IgnoreError();
    }
    {
      Server server = Start({self, "--bare=" + dir + "/batch.pb"});
      bare.Add(StreamAll(server.address, plan_id, clients, steps));
      server.process->Signal(SIGTERM);
      server.process->Wait(absl::Seconds(10)).IgnoreError();
    }
    std::printf("%s %s\n", line.c_str(), bare.Last().c_str());
  }
  std::string summary = "median:";
  for (const Series& series : ours) {
    absl::StrAppendFormat(
        &summary, " %s %.1f M tokens/s (ratio to bare %.2f, batch gap p99 %.2f ms);", series.name,
        Median(series.tokens_per_second),
        Median(series.tokens_per_second) / Median(bare.tokens_per_second), Median(series.gap_p99));
  }
  absl::StrAppendFormat(&summary, " bare gRPC %.1f M tokens/s (batch gap p99 %.2f ms)",
                        Median(bare.tokens_per_second), Median(bare.gap_p99));
  std::printf("%s\n", summary.c_str());
  if (ours.size() == 2) {
    // Per-round ratios first, so that the noise of the machine shows in the spread.
    std::vector<double> ratios;
    for (int r = 0; r < flags.rounds; ++r) {
      ratios.push_back(ours[1].tokens_per_second[r] / ours[0].tokens_per_second[r]);
    }
    std::printf("%s / %s: median of per-round ratios %.2f (min %.2f, max %.2f)\n",
                flags.layouts[1].c_str(), flags.layouts[0].c_str(), Median(ratios),
                *std::min_element(ratios.begin(), ratios.end()),
                *std::max_element(ratios.begin(), ratios.end()));
  }
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
  app.add_option("--document_tokens", flags.document_tokens,
                 "Tokens per document (default: 4 sequences)");
  app.add_option("--layouts", flags.layouts,
                 "Store layouts to stream from, in turn each round: chunked, whole")
      ->delimiter(',')
      ->capture_default_str();
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

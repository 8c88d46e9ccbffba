// Every DataMixer method's request, as a client on the network could send it, through a real
// service over a store of books, web pages and chats (datamixer/serve/test_corpus.h), so that
// plans and streams have data to work on; Ingest goes to a second, writable store with a
// byte-level BPE tokenizer, so that the first never changes and the plan ids in the seeds stay
// valid. Asserts rpc_call.h's promise: a well-formed request gets OK or an error a client can
// act on.
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

#include "datamixer/serve/datamixer_service.h"
#include "datamixer/serve/test_corpus.h"
#include "datamixer/tokenizer/load.h"
#include "datamixer/tokenizer/test_ranks.h"
#include "fuzz/check.h"
#include "fuzz/rpc_call.h"
#include "fuzz/scratch.h"
#include "prolong/v1/datamixer.grpc.pb.h"
#include "prometheus/registry.h"

namespace {

std::shared_ptr<grpc::Channel> Serve(
    const std::string& store_dir, std::shared_ptr<const prolong::tokenizer::Tokenizer> tokenizer) {
  prolong::serve::DataMixerOptions options;
  options.store_dir = store_dir;
  options.tokenizer = std::move(tokenizer);
  static auto* registry = new prometheus::Registry;
  auto service = prolong::serve::DataMixerService::Create(options, *registry);
  FUZZ_CHECK(service.ok(), service.status().ToString());
  return prolong::fuzz::ChannelTo(prolong::fuzz::ServeUntilExit(
      std::move(*service), prolong::v1::DataMixer::service_full_name()));
}

struct Datamixers {
  std::shared_ptr<grpc::Channel> served;
  std::shared_ptr<grpc::Channel> ingesting;
};

Datamixers StartDatamixers() {
  const std::string dir = prolong::fuzz::EmptyScratchDir("datamixer");
  const std::string ranks = dir + "/ranks.tiktoken";
  { std::ofstream(ranks) << prolong::tokenizer::ByteRankFile({"wo", "or", "rd", "word"}); }
  auto tokenizer = prolong::tokenizer::LoadTokenizer(ranks, "cl100k_base");
  FUZZ_CHECK(tokenizer.ok(), tokenizer.status().ToString());
  prolong::serve::testing::WriteTestCorpus(dir + "/served", /*seed=*/1);
  return {Serve(dir + "/served", nullptr), Serve(dir + "/ingested", std::move(*tokenizer))};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Datamixers datamixers = StartDatamixers();
  prolong::fuzz::FuzzCall(
      [](const std::string& method) {
        return method == "Ingest" ? datamixers.ingesting : datamixers.served;
      },
      "prolong.v1.DataMixer", data, size);
  return 0;
}

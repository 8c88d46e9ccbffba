// prolong datamixer: serves a store of tokenized documents, deterministic stage plans and every
// trainer rank's slice of each global batch (proto/prolong/v1/datamixer.proto).

#include <iostream>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "common/cli.h"
#include "common/server.h"
#include "datamixer/serve/datamixer_service.h"
#include "datamixer/tokenizer/load.h"
#include "prolong/v1/datamixer.grpc.pb.h"

int main(int argc, char** argv) {
  prolong::ServerOptions options;
  options.component = "datamixer";
  options.address = "127.0.0.1:7410";
  options.metrics_address = "127.0.0.1:7411";
  prolong::serve::DataMixerOptions mixer;
  std::string tokenizer_path, preset;
  CLI::App app(
      "prolong datamixer: tokenized document shards, stage plans and packed batches.\n"
      "Without --tokenizer the store is served read-only (any number of datamixers may share "
      "it); with it, the store is created if absent and Ingest is accepted.");
  app.add_option("--store", mixer.store_dir, "Store directory")->required();
  app.add_option("--tokenizer", tokenizer_path,
                 "Tokenizer file for ingesting text and chats (see prolongctl tokenizer)");
  app.add_option("--preset", preset, "llama3 or cl100k_base, for a bare rank file");
  app.add_option("--prefetch-batches", mixer.prefetch_batches,
                 "Batches each stream reads ahead of its client")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-plans", mixer.max_plans, "Plans kept at once (least recently used go)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-streams", mixer.max_streams,
                 "StreamBatches calls served at once (one per trainer rank); beyond, "
                 "RESOURCE_EXHAUSTED, which trainers retry")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-ingests", mixer.max_ingests,
                 "Ingest calls open at once (they write one at a time); beyond, "
                 "RESOURCE_EXHAUSTED")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  prolong::AddAuthTokenFlag(app, mixer.auth_token);
  if (auto exit_code = prolong::ParseServiceCommandLine(app, options, argc, argv)) {
    return *exit_code;
  }
  if (!tokenizer_path.empty()) {
    auto tokenizer = prolong::tokenizer::LoadTokenizer(tokenizer_path, preset);
    if (!tokenizer.ok()) {
      std::cerr << "datamixer: " << tokenizer.status().message() << std::endl;
      return 1;
    }
    mixer.tokenizer = *std::move(tokenizer);
  }
  auto registry = std::make_shared<prometheus::Registry>();
  auto service = prolong::serve::DataMixerService::Create(mixer, *registry);
  if (!service.ok()) {
    std::cerr << "datamixer: " << service.status().message() << std::endl;
    return 1;
  }
  return prolong::RunServerUntilSignal(
      options, {prolong::Hosted<prolong::v1::DataMixer>(service->get())}, registry);
}

// prolong evaluator: scores checkpoints on HELMET's long-context tasks over gRPC
// (proto/prolong/v1/evaluator.proto), one evaluation at a time, keeping every result in its
// store so that a restarted evaluator resumes what it had not finished.

#include <iostream>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "common/cli.h"
#include "common/install.h"
#include "common/server.h"
#include "evaluator/service/evaluator_service.h"
#include "prolong/v1/evaluator.grpc.pb.h"

int main(int argc, char** argv) {
  prolong::ServerOptions options;
  options.component = "evaluator";
  options.address = "127.0.0.1:7420";
  options.metrics_address = "127.0.0.1:7421";
  // Evaluation requests are kilobytes; a request of megabytes is a mistake or abuse.
  options.max_receive_message_bytes = 4 << 20;
  prolong::evaluator::EvaluatorServiceOptions evaluator;
  evaluator.store_dir = prolong::ProlongHome() + "/eval-results";
  CLI::App app(
      "prolong evaluator: scores checkpoints on HELMET's long-context tasks (synthetic recall, "
      "RAG, re-rank, ICL, long QA, summarization) at several input lengths.");
  app.add_option("--store", evaluator.store_dir,
                 "The result store (RocksDB; one evaluator at a time)")
      ->capture_default_str();
  app.add_option("--data", evaluator.data_dir, "HELMET's data/ directory, for file-based tasks");
  app.add_option("--device", evaluator.device, "cpu, cuda or auto")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--batch", evaluator.batch, "Requests generated together")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--prefill-chunk", evaluator.prefill_chunk, "Prompt tokens per prefill pass")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-queue", evaluator.max_queue, "Evaluations waiting at most")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-loaded-models", evaluator.max_loaded_models,
                 "Models kept loaded (least recently used go)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-watches", evaluator.max_watches, "WatchEvaluation streams open at once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  prolong::AddAuthTokenFlag(app, evaluator.auth_token);
  if (auto exit_code = prolong::ParseServiceCommandLine(app, options, argc, argv)) {
    return *exit_code;
  }
  auto registry = std::make_shared<prometheus::Registry>();
  auto service = prolong::evaluator::EvaluatorService::Create(evaluator, *registry);
  if (!service.ok()) {
    std::cerr << "evaluator: " << service.status().message() << std::endl;
    return 1;
  }
  return prolong::RunServerUntilSignal(
      options, {prolong::Hosted<prolong::v1::Evaluator>(service->get())}, registry);
}

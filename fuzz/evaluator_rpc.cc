// Every Evaluator method's request, as the scheduler or an operator's client could send it,
// through a real evaluator (its own result store) with a tiny Llama checkpoint and a byte-level
// tokenizer in the process's scratch directory (the seeds name it /prolong-fuzz-root: rpc_call.h's
// RelocatePaths), so that a request naming them is queued and really evaluated on its worker
// thread while later inputs arrive. Its queue holds 4, so that the fuzzer also meets
// RESOURCE_EXHAUSTED. Asserts rpc_call.h's promise: a well-formed request gets OK or an error a
// client can act on.
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

#include "datamixer/tokenizer/test_ranks.h"
#include "evaluator/service/evaluator_service.h"
#include "fuzz/check.h"
#include "fuzz/rpc_call.h"
#include "fuzz/scratch.h"
#include "prolong/v1/evaluator.grpc.pb.h"
#include "prometheus/registry.h"
#include "trainer/model/hf_checkpoint.h"
#include "trainer/model/llama.h"
#include "trainer/model/model_test_util.h"

namespace {

std::shared_ptr<grpc::Channel> StartEvaluator() {
  const std::string files = prolong::fuzz::EmptyScratchDir("files");
  prolong::fuzz::RelocatePaths("/prolong-fuzz-root", files);
  { std::ofstream(files + "/tiny.tiktoken") << prolong::tokenizer::ByteRankFile({"ab", "e "}); }
  {
    prolong::model::LlamaConfig config = prolong::model::testing::TinyLlamaConfig();
    config.vocab_size = 128256;  // Llama 3's, which the preset's special tokens need
    config.max_position_embeddings = 2048;
    config.eos_token_ids = {};
    const auto model = prolong::model::CreateLlama(config, 9);
    FUZZ_CHECK(model.ok(), model.status().ToString());
    const absl::Status saved = prolong::model::SaveLlama(**model, files + "/model");
    FUZZ_CHECK(saved.ok(), saved.ToString());
  }
  prolong::evaluator::EvaluatorServiceOptions options;
  options.store_dir = prolong::fuzz::EmptyScratchDir("evaluator") + "/results";
  options.device = "cpu";
  options.batch = 2;
  options.max_queue = 4;
  options.max_loaded_models = 1;
  static auto* registry = new prometheus::Registry;
  auto service = prolong::evaluator::EvaluatorService::Create(options, *registry);
  FUZZ_CHECK(service.ok(), service.status().ToString());
  return prolong::fuzz::ChannelTo(prolong::fuzz::ServeUntilExit(
      std::move(*service), prolong::v1::Evaluator::service_full_name()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::shared_ptr<grpc::Channel> channel = StartEvaluator();
  prolong::fuzz::FuzzCall(channel, "prolong.v1.Evaluator", data, size);
  return 0;
}

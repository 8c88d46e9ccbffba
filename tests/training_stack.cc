#include "tests/training_stack.h"

#include <fstream>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "datamixer/store/store.h"
#include "datamixer/tokenizer/test_ranks.h"

namespace prolong::testing {

std::string WriteByteTokenizer(const std::string& dir) {
  std::ofstream(dir + "/bytes.tiktoken", std::ios::binary) << tokenizer::ByteRankFile({});
  std::ofstream(dir + "/tokenizer.json") << R"({"type": "tiktoken", "ranks": "bytes.tiktoken",
    "preset": "llama3", "special_tokens": {"<|begin_of_text|>": 256, "<|end_of_text|>": 257,
    "<|eot_id|>": 258}, "bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"})";
  return dir + "/tokenizer.json";
}

absl::Status WriteLearnableCorpus(const std::string& dir, bool one_more_document) {
  ASSIGN_OR_RETURN(auto store,
                   store::Store::OpenForWriting(dir, {"test-tokenizer", kLearnableVocab}));
  std::mt19937_64 random(5);
  std::vector<store::Document> documents;
  auto add = [&](const std::string& domain, int count, int64_t min_length, int64_t max_length) {
    for (int i = 0; i < count; ++i) {
      store::Document document{domain, absl::StrCat(domain, "/", i), {}, ""};
      const int64_t length =
          min_length + static_cast<int64_t>(random() % (max_length - min_length + 1));
      const uint64_t start = random() % kLearnableVocab, stride = 1 + random() % 3;
      for (int64_t t = 0; t < length; ++t) {
        document.tokens.push_back(static_cast<uint32_t>((start + stride * t) % kLearnableVocab));
      }
      documents.push_back(std::move(document));
    }
  };
  add("books", 24, 150, 300);
  add("web", 200, 5, 60);
  if (one_more_document) {
    documents.push_back({"web", "web/extra", {7, 11, 13, 17, 19, 23, 29, 31, 37, 41}, ""});
  }
  return store->shard().AddBatch(documents).status();
}

absl::StatusOr<ServiceProcess> StartService(const std::vector<std::string>& argv,
                                            absl::Duration timeout) {
  ServiceProcess service;
  ASSIGN_OR_RETURN(service.process, Subprocess::Start(argv));
  absl::StatusOr<std::string> line = service.process->ReadStdoutLine(timeout);
  if (!line.ok()) {
    return Annotate(line.status(),
                    absl::StrCat(argv[0], " (stderr: ", service.process->Stderr(), ")"));
  }
  for (absl::string_view field : absl::StrSplit(*line, ' ')) {
    if (absl::ConsumePrefix(&field, "grpc=")) service.address = std::string(field);
    if (absl::ConsumePrefix(&field, "metrics=")) service.metrics_address = std::string(field);
  }
  if (service.address.empty()) {
    return absl::InternalError(absl::StrCat(argv[0], ": no address in its ready line: ", *line));
  }
  return service;
}

}  // namespace prolong::testing

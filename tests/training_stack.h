// What multi-process training tests share: a corpus a tiny Llama learns from quickly, and prolong
// service binaries started as child processes, with the addresses their ready lines give.
#ifndef PROLONG_TESTS_TRAINING_STACK_H_
#define PROLONG_TESTS_TRAINING_STACK_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/subprocess.h"

namespace prolong::testing {

// The service binaries, where a test's runfiles hold them.
inline constexpr char kDatamixerBinary[] = "services/datamixer/datamixer";
inline constexpr char kEvaluatorBinary[] = "services/evaluator/evaluator";
inline constexpr char kSchedulerBinary[] = "services/scheduler/scheduler";
inline constexpr char kProlongctlBinary[] = "services/prolongctl/prolongctl";
inline constexpr char kTrainerBinary[] = "services/trainer/trainer";

// The corpus's vocabulary: token ids are below it.
inline constexpr int kLearnableVocab = 256;

// A RunSpec's `model:` block (YAML) for a tiny Llama over the corpus: hidden 32, 2 layers, 4
// heads, 2 kv heads, float32, vocabulary 260 (the corpus's kLearnableVocab ids, then room for
// the special tokens of a byte-level tokenizer the evaluator can prompt it with) and 2048
// positions (the evaluator's prompts are longer than the training sequences).
inline constexpr char kTinyModelYaml[] = R"(model:
  config: {vocab_size: 260, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
           num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 2048,
           bos_token_id: 1, eos_token_ids: [2]}
  precision: fp32
)";

// Writes a byte-level tokenizer the evaluator can prompt that model with (the 256 byte tokens,
// then Llama 3's special tokens within the vocabulary) into `dir`; the description's path, for
// a RunSpec's `model.tokenizer.path`.
std::string WriteByteTokenizer(const std::string& dir);

// A store at `dir` with domains "books" (24 documents of 150 to 300 tokens) and "web" (200 of 5
// to 60), each document an arithmetic progression of ids modulo kLearnableVocab, and with
// `one_more_document` one more web document (other data, another fingerprint).
absl::Status WriteLearnableCorpus(const std::string& dir, bool one_more_document = false);

struct ServiceProcess {
  std::unique_ptr<Subprocess> process;
  std::string address;          // grpc=
  std::string metrics_address;  // metrics=
};

// Starts a service binary (argv[0]) and waits for its ready line
// ("NAME listening: grpc=HOST:PORT metrics=HOST:PORT").
absl::StatusOr<ServiceProcess> StartService(const std::vector<std::string>& argv,
                                            absl::Duration timeout = absl::Seconds(60));

}  // namespace prolong::testing

#endif  // PROLONG_TESTS_TRAINING_STACK_H_

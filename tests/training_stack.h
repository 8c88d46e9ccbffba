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

// The corpus's vocabulary: token ids are below it.
inline constexpr int kLearnableVocab = 256;

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

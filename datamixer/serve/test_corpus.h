// Test data for the serving path: a store with long, short and SFT documents of random tokens,
// and the arrays a sequence must carry, computed straight from those documents.
#ifndef PROLONG_DATAMIXER_SERVE_TEST_CORPUS_H_
#define PROLONG_DATAMIXER_SERVE_TEST_CORPUS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "datamixer/plan/stage_plan.h"
#include "datamixer/store/shard.h"
#include "prolong/v1/run_spec.pb.h"

namespace prolong::serve::testing {

struct TestCorpus {
  std::string store_dir;
  // Keyed by (domain, document id).
  std::map<std::pair<std::string, std::string>, store::Document> documents;
};

// Writes a store at `store_dir` with domains "books" (documents of 100 to 700 tokens), "web"
// (1 to 60 tokens) and "chat" (5 to 60 tokens, random loss masks).
TestCorpus WriteTestCorpus(const std::string& store_dir, uint64_t seed);

// A stage over the corpus: books 25% long, web 50% short, chat 25% sft.
v1::StageSpec TestStage(int64_t seq_len, int64_t batch_sequences, int64_t steps);

// What a whole planned sequence holds, one element per token.
struct SequenceArrays {
  std::vector<uint32_t> token_ids, target_ids;
  std::vector<uint8_t> loss_mask;
  std::vector<int32_t> position_ids;
  std::vector<int32_t> cu_seqlens;
};
SequenceArrays ExpectedArrays(const plan::StagePlan& plan, const plan::PlannedSequence& sequence,
                              const TestCorpus& corpus);

}  // namespace prolong::serve::testing

#endif  // PROLONG_DATAMIXER_SERVE_TEST_CORPUS_H_

// Tiny tiktoken rank files for tests: every single byte (ranks 0..255), then the given merges.
#ifndef PROLONG_DATAMIXER_TOKENIZER_TEST_RANKS_H_
#define PROLONG_DATAMIXER_TOKENIZER_TEST_RANKS_H_

#include <string>
#include <vector>

namespace prolong::tokenizer {

// Rank-file text; merges get ranks 256, 257, ... in order.
std::string ByteRankFile(const std::vector<std::string>& merges = {});

}  // namespace prolong::tokenizer

#endif  // PROLONG_DATAMIXER_TOKENIZER_TEST_RANKS_H_

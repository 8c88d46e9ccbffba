// Tokenizers for the tests: byte-level BPE over every byte plus a few English merges (so token
// counts differ from byte counts), the first with Llama 3's special tokens and BOS, the second
// without any special tokens.
#ifndef PROLONG_EVALUATOR_TASKS_INTERNAL_TEST_TOKENIZER_H_
#define PROLONG_EVALUATOR_TASKS_INTERNAL_TEST_TOKENIZER_H_

#include <memory>

#include "datamixer/tokenizer/tokenizer.h"

namespace prolong::evaluator::tasks::internal {

std::unique_ptr<tokenizer::Tokenizer> Llama3TestTokenizer();
std::unique_ptr<tokenizer::Tokenizer> PlainTestTokenizer();

}  // namespace prolong::evaluator::tasks::internal

#endif  // PROLONG_EVALUATOR_TASKS_INTERNAL_TEST_TOKENIZER_H_

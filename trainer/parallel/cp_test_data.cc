#include "trainer/parallel/cp_test_data.h"

#include <vector>

namespace prolong::parallel::testing {

PackedSequence MakePackedSequence(uint64_t seed) {
  torch::manual_seed(seed);
  PackedSequence sequence;
  sequence.q = torch::randn({kTokens, kQueryHeads, kHeadDim});
  sequence.k = torch::randn({kTokens, kKeyValueHeads, kHeadDim});
  sequence.v = torch::randn({kTokens, kKeyValueHeads, kHeadDim});
  sequence.weights = torch::randn({kTokens, kQueryHeads, kHeadDim});
  std::vector<int64_t> documents;
  const int64_t lengths[] = {1, 5, 60, 1, 23, 40, 2, 25};  // Then one for the rest.
  int64_t document = 0;
  for (int64_t length : lengths) {
    for (int64_t i = 0; i < length && static_cast<int64_t>(documents.size()) < kTokens; ++i) {
      documents.push_back(document);
    }
    ++document;
  }
  while (static_cast<int64_t>(documents.size()) < kTokens) documents.push_back(document);
  // The seed also rotates which lengths come first, so replicas differ in layout too.
  const int64_t shift = static_cast<int64_t>(seed % 3) * 11;
  sequence.layout.document = torch::roll(torch::tensor(documents), shift);
  sequence.layout.document = std::get<0>(torch::sort(sequence.layout.document));
  sequence.layout.position = torch::arange(kTokens, torch::kInt64);
  return sequence;
}

torch::Tensor ZigzagIndices(int64_t tokens, int cp_rank, int cp_size) {
  const int64_t chunks = 2 * int64_t{cp_size};
  auto chunk = [&](int64_t j) {
    return torch::arange(j * tokens / chunks, (j + 1) * tokens / chunks, torch::kInt64);
  };
  if (cp_size == 1) return torch::arange(tokens, torch::kInt64);
  return torch::cat({chunk(cp_rank), chunk(chunks - 1 - cp_rank)});
}

}  // namespace prolong::parallel::testing

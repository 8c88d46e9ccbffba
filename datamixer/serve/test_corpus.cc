#include "datamixer/serve/test_corpus.h"

#include <random>

#include "common/log.h"
#include "datamixer/store/store.h"

namespace prolong::serve::testing {

TestCorpus WriteTestCorpus(const std::string& store_dir, uint64_t seed) {
  TestCorpus corpus{store_dir, {}};
  auto store = store::Store::OpenForWriting(store_dir, {"test-tokenizer", 100000});
  PROLONG_CHECK(store.ok()) << store.status();
  std::mt19937_64 rng(seed);
  auto uniform = [&](int64_t low, int64_t high) {
    return low + static_cast<int64_t>(rng() % static_cast<uint64_t>(high - low + 1));
  };
  std::vector<store::Document> batch;
  auto add = [&](const std::string& domain, int count, int64_t min_length, int64_t max_length,
                 bool masked) {
    for (int i = 0; i < count; ++i) {
      store::Document document{domain, domain + "/" + std::to_string(i), {}, ""};
      const int64_t length = uniform(min_length, max_length);
      for (int64_t t = 0; t < length; ++t) {
        document.tokens.push_back(static_cast<uint32_t>(uniform(0, 99999)));
      }
      if (masked) {
        for (int64_t t = 0; t < length; ++t) document.loss_mask.push_back(rng() % 2 ? 1 : 0);
      }
      corpus.documents[{domain, store::ComputeDocumentId(document.tokens, document.loss_mask)}] =
          document;
      batch.push_back(std::move(document));
    }
  };
  add("books", 40, 100, 700, false);
  add("web", 400, 1, 60, false);
  add("chat", 300, 5, 60, true);
  PROLONG_CHECK((*store)->shard().AddBatch(batch).ok());
  return corpus;
}

v1::StageSpec TestStage(int64_t seq_len, int64_t batch_sequences, int64_t steps) {
  v1::StageSpec stage;
  stage.set_name("test");
  stage.set_seq_len(seq_len);
  stage.set_batch_tokens(seq_len * batch_sequences);
  stage.set_total_tokens(seq_len * batch_sequences * steps);
  const struct {
    const char* domain;
    double proportion;
    v1::Packing packing;
  } mixture[] = {{"books", 0.25, v1::PACKING_LONG},
                 {"web", 0.5, v1::PACKING_SHORT},
                 {"chat", 0.25, v1::PACKING_SFT}};
  for (const auto& component : mixture) {
    v1::MixtureComponent* out = stage.add_mixture();
    out->set_domain(component.domain);
    out->set_proportion(component.proportion);
    out->set_packing(component.packing);
  }
  return stage;
}

SequenceArrays ExpectedArrays(const plan::StagePlan& plan, const plan::PlannedSequence& sequence,
                              const TestCorpus& corpus) {
  const plan::DomainUsage& usage = plan.domains()[sequence.domain];
  SequenceArrays arrays;
  arrays.cu_seqlens.push_back(0);
  for (const plan::Piece& piece : sequence.pieces) {
    const store::Document& document =
        corpus.documents.at({usage.data->name, usage.data->id(piece.document)});
    for (int64_t i = 0; i < piece.length; ++i) {
      const int64_t t = piece.offset + i;
      const bool has_next = i + 1 < piece.length;
      arrays.token_ids.push_back(document.tokens[t]);
      arrays.target_ids.push_back(has_next ? document.tokens[t + 1] : 0);
      const bool target_trained =
          has_next && (usage.packing != plan::Packing::kSft || document.loss_mask.empty() ||
                       document.loss_mask[t + 1] != 0);
      arrays.loss_mask.push_back(target_trained ? 1 : 0);
      arrays.position_ids.push_back(static_cast<int32_t>(i));
    }
    arrays.cu_seqlens.push_back(static_cast<int32_t>(arrays.token_ids.size()));
  }
  return arrays;
}

}  // namespace prolong::serve::testing

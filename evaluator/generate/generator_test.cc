#include "evaluator/generate/generator.h"

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "torch/torch.h"
#include "trainer/model/llama.h"
#include "trainer/model/model_test_util.h"

namespace prolong::evaluator::generate {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;
using torch::Tensor;

constexpr uint64_t kSeed = 33;

std::shared_ptr<model::LlamaForCausalLM> TinyModel() {
  model::LlamaConfig config = model::testing::TinyLlamaConfig();
  config.eos_token_ids = {};
  return *model::CreateLlama(config, kSeed);
}

std::vector<int64_t> RandomIds(int64_t length, uint32_t seed) {
  std::mt19937 random(seed);
  std::vector<int64_t> ids(length);
  for (int64_t& id : ids) id = std::uniform_int_distribution<int64_t>(0, 127)(random);
  return ids;
}

// Greedy decoding the slow way: the whole sequence through the model for every new token.
std::vector<int64_t> RecomputedGreedy(model::LlamaForCausalLM& plain, std::vector<int64_t> ids,
                                      int64_t max_new_tokens, const std::vector<int64_t>& eos) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> generated;
  while (static_cast<int64_t>(generated.size()) < max_new_tokens) {
    const int64_t n = static_cast<int64_t>(ids.size());
    const Tensor hidden =
        plain.forward(torch::tensor(ids), {torch::zeros({n}, torch::kInt64), torch::arange(n)});
    const int64_t next = plain.Logits(hidden, n - 1, n)[0].argmax().item<int64_t>();
    if (std::find(eos.begin(), eos.end(), next) != eos.end()) break;
    generated.push_back(next);
    ids.push_back(next);
  }
  return generated;
}

std::vector<GenerationRequest> Requests(int64_t max_new_tokens) {
  std::vector<GenerationRequest> requests;
  for (const auto& [length, seed] :
       std::vector<std::pair<int64_t, uint32_t>>{{3, 1}, {17, 2}, {9, 3}, {40, 4}, {1, 5}}) {
    GenerationRequest request;
    request.prompt = RandomIds(length, seed);
    request.max_new_tokens = max_new_tokens;
    requests.push_back(request);
  }
  return requests;
}

TEST(GeneratorTest, GreedyWithTheCacheEqualsRecomputingThePrefix) {
  auto plain = TinyModel();
  std::vector<GenerationRequest> requests = Requests(12);
  // An EOS id that one request meets early, so that requests end at different steps.
  const std::vector<int64_t> free_run = RecomputedGreedy(*plain, requests[1].prompt, 12, {});
  const std::vector<int64_t> eos = {free_run[4]};
  std::vector<std::vector<int64_t>> expected;
  for (const GenerationRequest& request : requests) {
    expected.push_back(RecomputedGreedy(*plain, request.prompt, 12, eos));
  }
  ASSERT_LT(expected[1].size(), 12u);

  for (const int64_t batch : {int64_t{5}, int64_t{2}, int64_t{1}}) {
    SCOPED_TRACE(batch);
    GeneratorOptions options;
    options.prefill_chunk = 8;
    options.max_batch = batch;
    options.eos_ids = eos;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Generator> generator,
                         Generator::Create(TinyModel(), options));
    std::vector<size_t> finished;
    ASSERT_OK_AND_ASSIGN(const std::vector<Generation> generations,
                         generator->Generate(requests, [&](size_t request, const Generation&) {
                           finished.push_back(request);
                         }));
    ASSERT_EQ(generations.size(), requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      EXPECT_EQ(generations[i].tokens, expected[i]) << "request " << i;
      EXPECT_EQ(generations[i].stop_reason,
                expected[i].size() < 12 ? StopReason::kEos : StopReason::kLength)
          << "request " << i;
    }
    std::sort(finished.begin(), finished.end());
    EXPECT_EQ(finished, (std::vector<size_t>{0, 1, 2, 3, 4}));
    EXPECT_EQ(generator->stats().prefill_tokens, 3 + 17 + 9 + 40 + 1);
    EXPECT_GT(generator->stats().decode_tokens, 0);
  }
}

TEST(GeneratorTest, AStopStringEndsTheGenerationAtTheTokenThatCompletesIt) {
  auto plain = TinyModel();
  GenerationRequest request = Requests(10)[3];
  const std::vector<int64_t> free_run = RecomputedGreedy(*plain, request.prompt, 10, {});
  // Each id reads as one letter; the stop string is what tokens 3 and 4 spell.
  auto decode = [](const std::vector<int64_t>& ids) {
    std::string text;
    for (int64_t id : ids) text += static_cast<char>('a' + id % 26);
    return text;
  };
  request.stop_strings = {"zzzzzz", decode({free_run[3], free_run[4]})};
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Generator> generator,
                       Generator::Create(TinyModel(), GeneratorOptions(), decode));
  ASSERT_OK_AND_ASSIGN(const std::vector<Generation> generations, generator->Generate({request}));
  const std::string spelled = decode(generations[0].tokens);
  EXPECT_EQ(generations[0].stop_reason, StopReason::kStopString);
  ASSERT_LE(generations[0].tokens.size(), 5u);
  EXPECT_NE(spelled.find(request.stop_strings[1]), std::string::npos);
  // It stopped at the first token whose text holds the stop string.
  std::vector<int64_t> shorter = generations[0].tokens;
  shorter.pop_back();
  EXPECT_EQ(decode(shorter).find(request.stop_strings[1]), std::string::npos);
  EXPECT_EQ(std::vector<int64_t>(free_run.begin(), free_run.begin() + generations[0].tokens.size()),
            generations[0].tokens);
}

TEST(GeneratorTest, SamplingIsSeeded) {
  std::vector<GenerationRequest> requests = Requests(16);
  for (GenerationRequest& request : requests) {
    request.sampling.temperature = 1.5;
    request.sampling.top_p = 0.95;
    request.sampling.seed = 7;
  }
  auto run = [&](const std::vector<GenerationRequest>& batch) {
    auto generator = *Generator::Create(TinyModel(), GeneratorOptions());
    return *generator->Generate(batch);
  };
  const std::vector<Generation> first = run(requests);
  const std::vector<Generation> again = run(requests);
  for (size_t i = 0; i < requests.size(); ++i) EXPECT_EQ(first[i].tokens, again[i].tokens);
  // Alone or batched, a request samples the same tokens.
  EXPECT_EQ(run({requests[3]})[0].tokens, first[3].tokens);
  requests[3].sampling.seed = 8;
  EXPECT_NE(run(requests)[3].tokens, first[3].tokens);
  // Sampling is not greedy.
  auto greedy = requests[3];
  greedy.sampling = Sampling();
  EXPECT_NE(run({greedy})[0].tokens, first[3].tokens);
}

TEST(GeneratorTest, ZeroNewTokensGeneratesNothing) {
  auto generator = *Generator::Create(TinyModel(), GeneratorOptions());
  ASSERT_OK_AND_ASSIGN(const std::vector<Generation> generations, generator->Generate(Requests(0)));
  for (const Generation& generation : generations) {
    EXPECT_TRUE(generation.tokens.empty());
    EXPECT_EQ(generation.stop_reason, StopReason::kLength);
  }
}

TEST(GeneratorTest, BadRequestsAreRefusedBeforeAnyWork) {
  auto generator = *Generator::Create(TinyModel(), GeneratorOptions());
  auto expect = [&](GenerationRequest bad, const std::string& message) {
    std::vector<GenerationRequest> requests = Requests(2);
    requests.push_back(std::move(bad));
    EXPECT_THAT(generator->Generate(requests),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)));
    EXPECT_EQ(generator->stats().prefill_tokens, 0);
  };
  GenerationRequest request = Requests(2)[0];
  GenerationRequest bad = request;
  bad.prompt.clear();
  expect(bad, "requests[5]: the prompt is empty");
  bad = request;
  bad.prompt[1] = 128;
  expect(bad, "prompt id 128 is outside the vocabulary of 128");
  bad = request;
  bad.max_new_tokens = 254;  // 3 + 254 > 256
  expect(bad, "exceed the model's maximum length 256");
  bad = request;
  bad.stop_strings = {"\n"};
  expect(bad, "stop strings need a decoder");
  bad = request;
  bad.sampling.temperature = -1;
  expect(bad, "sampling.temperature");
  bad = request;
  bad.sampling.top_p = 0;
  expect(bad, "sampling.top_p must be in (0, 1]");

  GeneratorOptions options;
  options.prefill_chunk = 0;
  EXPECT_THAT(Generator::Create(TinyModel(), options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("prefill_chunk")));
  options = GeneratorOptions();
  options.eos_ids = {500};
  EXPECT_THAT(Generator::Create(TinyModel(), options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("eos id 500")));
}

}  // namespace
}  // namespace prolong::evaluator::generate

#include "services/prolongctl/tokenizer_command.h"

#include <algorithm>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "datamixer/tokenizer/chat_template.h"
#include "datamixer/tokenizer/load.h"
#include "datamixer/tokenizer/sentencepiece_tokenizer.h"

namespace prolong::ctl {
namespace {

struct TokenizerFlags {
  std::string tokenizer;
  std::string preset;
  bool special = false;
};

std::string ReadStdin() {
  std::ios::sync_with_stdio(false);
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

int Fail(const absl::Status& status) {
  std::cerr << "prolongctl tokenizer: " << status.message() << std::endl;
  return 1;
}

int Encode(const TokenizerFlags& flags) {
  absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> loaded =
      tokenizer::LoadTokenizer(flags.tokenizer, flags.preset);
  if (!loaded.ok()) return Fail(loaded.status());
  const std::string text = ReadStdin();
  const std::vector<uint32_t> ids =
      flags.special ? (*loaded)->EncodeWithSpecialTokens(text) : (*loaded)->Encode(text);
  std::cout << "[" << absl::StrJoin(ids, ",") << "]" << std::endl;
  return 0;
}

// Accepts a JSON array of ids or ids separated by commas and whitespace.
absl::StatusOr<std::vector<uint32_t>> ParseIds(absl::string_view input) {
  std::vector<uint32_t> ids;
  int index = 0;
  for (absl::string_view field :
       absl::StrSplit(input, absl::ByAnyChar("[], \t\r\n"), absl::SkipEmpty())) {
    uint32_t id = 0;
    if (!absl::SimpleAtoi(field, &id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("input: item ", index, " ('", field.substr(0, 20), "') is not an id"));
    }
    ids.push_back(id);
    ++index;
  }
  return ids;
}

int Decode(const TokenizerFlags& flags) {
  absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> loaded =
      tokenizer::LoadTokenizer(flags.tokenizer, flags.preset);
  if (!loaded.ok()) return Fail(loaded.status());
  absl::StatusOr<std::vector<uint32_t>> ids = ParseIds(ReadStdin());
  if (!ids.ok()) return Fail(ids.status());
  absl::StatusOr<std::string> text = (*loaded)->Decode(*ids);
  if (!text.ok()) return Fail(text.status());
  std::cout << *text << std::flush;
  return 0;
}

void AddLoadFlags(CLI::App* command, TokenizerFlags& flags) {
  command
      ->add_option("--tokenizer", flags.tokenizer,
                   "Tokenizer file: description (.json/.yaml), SentencePiece .model, or a "
                   "tiktoken rank file with --preset")
      ->required();
  command->add_option("--preset", flags.preset, "llama3 or cl100k_base, for a bare rank file")
      ->check(CLI::IsMember({"", "llama3", "cl100k_base"}));
}

}  // namespace

void AddTokenizerCommand(CLI::App& app, int* exit_code) {
  CLI::App* tokenizer = app.add_subcommand("tokenizer", "Encode, decode, train tokenizers");
  tokenizer->require_subcommand(1);

  auto flags = std::make_shared<TokenizerFlags>();
  CLI::App* encode =
      tokenizer->add_subcommand("encode", "Read text on stdin, print its ids as one JSON array");
  AddLoadFlags(encode, *flags);
  encode->add_flag("--special", flags->special,
                   "Turn special-token strings (e.g. <|eot_id|>) into their ids");
  encode->callback([flags, exit_code] { *exit_code = Encode(*flags); });

  CLI::App* decode = tokenizer->add_subcommand(
      "decode", "Read ids on stdin (a JSON array or separated numbers), print the text");
  AddLoadFlags(decode, *flags);
  decode->callback([flags, exit_code] { *exit_code = Decode(*flags); });

  auto training = std::make_shared<tokenizer::SentencePieceTraining>();
  CLI::App* train = tokenizer->add_subcommand(
      "train", "Train a SentencePiece model (byte fallback, full coverage) on text files");
  train->add_option("--input", training->inputs, "Text files")->required()->expected(1, -1);
  train->add_option("--vocab-size", training->vocab_size, "Pieces, 256 of them bytes")
      ->check(CLI::Range(300, 1 << 20));
  train->add_option("--out", training->model_prefix, "Writes OUT.model and OUT.vocab")->required();
  train->add_option("--model-type", training->model_type, "bpe or unigram")
      ->check(CLI::IsMember({"bpe", "unigram"}));
  train
      ->add_option("--special-tokens", training->special_tokens,
                   "Control symbols besides <s> and </s>, comma-separated; llama3-chat: Llama "
                   "3's chat tokens, which `data ingest --format chat` needs")
      ->delimiter(',');

  train->callback([training, exit_code] {
    std::vector<std::string>& special = training->special_tokens;
    const auto chat = std::find(special.begin(), special.end(), "llama3-chat");
    if (chat != special.end()) {
      special.erase(chat);
      special.insert(special.end(), std::begin(tokenizer::kChatTokens),
                     std::end(tokenizer::kChatTokens));
    }
    const absl::Status status = tokenizer::TrainSentencePiece(*training);
    if (!status.ok()) {
      *exit_code = Fail(status);
      return;
    }
    std::cout << "wrote " << training->model_prefix << ".model and " << training->model_prefix
              << ".vocab" << std::endl;
  });
}

}  // namespace prolong::ctl

// A tokenizer file as a user names it to LoadTokenizer (load.h), which takes a path: the input
// is written into a directory of this process's own and loaded
//  - as a description file (tokenizer.json), with no preset and with llama3 as the preset;
//  - as a bare tiktoken rank file, under the name Llama 3 ships its ranks as (tokenizer.model),
//    with the llama3 and cl100k_base presets.
// A description can name ranks.tiktoken, a small valid rank file written beside it, or
// tokenizer.model, the input itself. Each load fails with NOT_FOUND or INVALID_ARGUMENT naming
// a file, or gives a tokenizer whose ids for a few fixed texts are in its vocabulary (never a
// special token's from Encode), decode back to the text (exactly, when the split pattern is the
// preset's, which leaves no character out), read ill-formed UTF-8 as U+FFFD, and whose bos/eos
// ids are special tokens'.
//
// No input reaches SentencePiece: its shim is loaded with RTLD_DEEPBIND, which AddressSanitizer
// refuses. A .model file is only loaded with a preset (then it is ranks), and a description of
// type sentencepiece is skipped if its model file exists (one naming no file fails before the
// shim is loaded). //fuzz:sentencepiece_model covers SentencePiece models.
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "datamixer/tokenizer/load.h"
#include "datamixer/tokenizer/test_ranks.h"
#include "datamixer/tokenizer/tokenizer.h"
#include "fuzz/check.h"
#include "fuzz/scratch.h"
#include "yaml-cpp/yaml.h"

namespace {

namespace tok = prolong::tokenizer;

// Texts every loaded tokenizer encodes: ASCII words, digits, whitespace runs, 2- to 4-byte
// characters, and the strings of well-known special tokens as plain text.
const char* const kTexts[] = {
    "",
    "Hello, world! It's 2024: caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80\n\n\tx();  ",
    "<|endoftext|><|begin_of_text|> <s></s>\\E\\Q(*UTF)",
};

const std::string& Dir() { return prolong::fuzz::ScratchDir(); }

std::string Write(absl::string_view name, absl::string_view contents) {
  return prolong::fuzz::WriteScratchFile(name, contents);
}

// What the loader will make of a description, found the way load.cc finds it (yaml-cpp, paths
// relative to the description's directory).
struct Description {
  bool skip = false;          // It would load a SentencePiece model, or read a device or pipe.
  bool own_pattern = false;   // Its pattern, not the preset's, splits the text.
  std::string absolute_path;  // A file it names by absolute path, which an error may name.
};

Description Inspect(absl::string_view text) {
  Description description;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception&) {
    return description;
  }
  if (!root.IsMap()) return description;
  auto field = [&](const char* name) -> std::string {
    const YAML::Node node = root[name];
    return node && node.IsScalar() ? node.as<std::string>() : "";
  };
  auto resolve = [&](const std::string& path) {
    if (path.empty() || path[0] != '/') return absl::StrCat(Dir(), "/", path);
    description.absolute_path = path;
    return path;
  };
  struct stat info;
  const std::string type = field("type");
  if (type == "sentencepiece") {
    const std::string model = field("model");
    description.skip = !model.empty() && stat(resolve(model).c_str(), &info) == 0;
  } else {
    const std::string ranks = field("ranks");
    description.skip = !ranks.empty() && stat(resolve(ranks).c_str(), &info) == 0 &&
                       !S_ISREG(info.st_mode) && !S_ISDIR(info.st_mode);
  }
  description.own_pattern = !field("pattern").empty();
  return description;
}

std::string Show(const std::vector<uint32_t>& ids) {
  std::string shown;
  for (const uint32_t id : ids) absl::StrAppend(&shown, shown.empty() ? "" : " ", id);
  return shown;
}

// Ids in the vocabulary that decode to `text`, or to no more than it when the pattern is not
// known to cover every character.
void CheckDecodes(const tok::Tokenizer& tokenizer, const std::vector<uint32_t>& ids,
                  const std::string& text, bool exact, absl::string_view what) {
  for (const uint32_t id : ids) {
    FUZZ_CHECK(id < tokenizer.vocab_size(), absl::StrCat(what, ": id ", id));
  }
  const absl::StatusOr<std::string> decoded = tokenizer.Decode(ids);
  FUZZ_CHECK(decoded.ok(), absl::StrCat(what, ": ", decoded.status().ToString()));
  FUZZ_CHECK(exact ? *decoded == text : decoded->size() <= text.size(),
             absl::StrCat(what, ": ", absl::CEscape(text), " -> ", Show(ids), " -> ",
                          absl::CEscape(*decoded)));
}

void CheckSpecialId(const tok::Tokenizer& tokenizer, std::optional<uint32_t> id,
                    absl::string_view what) {
  if (!id) return;
  const absl::StatusOr<std::string> token = tokenizer.Decode({*id});
  FUZZ_CHECK(token.ok(), absl::StrCat(what, ": ", token.status().ToString()));
  FUZZ_CHECK(tokenizer.SpecialTokenId(*token) == id, absl::StrCat(what, " ", *id));
}

void CheckTokenizer(const tok::Tokenizer& tokenizer, bool exact) {
  FUZZ_CHECK(tokenizer.vocab_size() > 0, "empty vocabulary");
  FUZZ_CHECK(tokenizer.fingerprint().size() == 64, tokenizer.fingerprint());
  CheckSpecialId(tokenizer, tokenizer.bos_id(), "bos");
  CheckSpecialId(tokenizer, tokenizer.eos_id(), "eos");
  const absl::StatusOr<std::string> beyond = tokenizer.Decode({tokenizer.vocab_size()});
  FUZZ_CHECK(beyond.status().code() == absl::StatusCode::kInvalidArgument, "decoded id vocab_size");

  for (const char* text : kTexts) {
    const std::vector<uint32_t> ids = tokenizer.Encode(text);
    CheckDecodes(tokenizer, ids, text, exact, "Encode");
    for (const uint32_t id : ids) {
      const absl::StatusOr<std::string> token = tokenizer.Decode({id});
      FUZZ_CHECK(token.ok() && tokenizer.SpecialTokenId(*token) != id,
                 absl::StrCat("Encode gave special id ", id));
    }
    std::string with_specials = text;
    for (const std::optional<uint32_t> id : {tokenizer.bos_id(), tokenizer.eos_id()}) {
      if (id) absl::StrAppend(&with_specials, *tokenizer.Decode({*id}), text);
    }
    CheckDecodes(tokenizer, tokenizer.EncodeWithSpecialTokens(with_specials), with_specials, exact,
                 "EncodeWithSpecialTokens");
  }
  FUZZ_CHECK(tokenizer.Encode("a\xFF"
                              "b\xE4\xB8") == tokenizer.Encode("a\xEF\xBF\xBD"
                                                               "b\xEF\xBF\xBD"),
             "ill-formed UTF-8 not read as U+FFFD");
}

void Load(const std::string& path, const std::string& preset, bool exact,
          const std::string& absolute_path) {
  const absl::StatusOr<std::unique_ptr<tok::Tokenizer>> tokenizer =
      tok::LoadTokenizer(path, preset);
  if (tokenizer.ok()) {
    CheckTokenizer(**tokenizer, exact);
    return;
  }
  const absl::Status& status = tokenizer.status();
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument ||
                 status.code() == absl::StatusCode::kNotFound,
             status.ToString());
  FUZZ_CHECK(absl::StartsWith(status.message(), Dir() + "/") ||
                 (!absolute_path.empty() && absl::StartsWith(status.message(), absolute_path)),
             absl::StrCat(path, " (", preset, "): error names no file: ", status.ToString()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool ranks_written =
      !Write("ranks.tiktoken", tok::ByteRankFile({"he", "ll", "hello", " w", "orld", "  "}))
           .empty();
  (void)ranks_written;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  // Both names are written before anything loads, so what a description names never depends
  // on an earlier input.
  const std::string description = Write("tokenizer.json", input);
  const std::string ranks = Write("tokenizer.model", input);

  for (const char* preset : {"llama3", "cl100k_base"}) Load(ranks, preset, true, "");
  const Description inspected = Inspect(input);
  if (inspected.skip) return 0;
  for (const char* preset : {"", "llama3"}) {
    Load(description, preset, !inspected.own_pattern, inspected.absolute_path);
  }
  return 0;
}

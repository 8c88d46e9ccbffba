// A SentencePiece model file (.model, a serialized ModelProto) as LoadTokenizer hands it to the
// sentencepiece shim: the input is written to a file of this process's own and loaded by the
// shim's code. It either fails with a message or gives a model whose every id has a piece,
// whose bos/eos are ids of it or -1, and which encodes a few fixed texts to ids of its
// vocabulary that decode without error.
//
// The shim's code is linked into this binary (//datamixer/tokenizer:sentencepiece_shim_linked)
// instead of loaded with RTLD_DEEPBIND, which AddressSanitizer refuses. That is safe here
// because nothing in this binary brings in gRPC or the system protobuf, whose symbols would
// collide with libsentencepiece's own protobuf (sentencepiece_shim.h): so it depends on nothing
// else of prolong, not even Abseil.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "datamixer/tokenizer/internal/sentencepiece_shim.h"
#include "fuzz/check.h"

extern "C" prolong::tokenizer::internal::SentencePieceModel* ProlongNewSentencePieceModel();

namespace {

using prolong::tokenizer::internal::SentencePieceModel;

// Plain words, whitespace runs, multi-byte characters (and one no model has seen, for byte
// fallback or <unk>), and control symbols' strings, which are plain text to Encode.
const char* const kTexts[] = {
    "",
    "Hello world, it's a long context: 12345.",
    "  caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87\n\t\xF0\x9F\x98\x80 \xEF\xBF\xBD",
    "<s></s><unk><pad>\xE2\x96\x81",
};

const std::string& ModelPath() {
  static const std::string* const path = [] {
    const char* base = std::getenv("TEST_TMPDIR");
    if (base == nullptr || *base == '\0') base = std::getenv("TMPDIR");
    if (base == nullptr || *base == '\0') base = "/tmp";
    auto* made =
        new std::string(std::filesystem::absolute(base).string() +
                        "/prolong-fuzz-sentencepiece_model-" + std::to_string(getpid()) + ".model");
    std::atexit([] { std::remove(ModelPath().c_str()); });
    return made;
  }();
  return *path;
}

std::string Describe(const std::vector<int>& ids) {
  std::string shown;
  for (const int id : ids) shown += (shown.empty() ? "" : " ") + std::to_string(id);
  return shown;
}

void CheckModel(const SentencePieceModel& model) {
  const int pieces = model.PieceCount();
  FUZZ_CHECK(pieces > 0, "a loaded model without pieces");
  for (const int id : {model.BosId(), model.EosId()}) {
    FUZZ_CHECK(id >= -1 && id < pieces, "bos/eos id " + std::to_string(id));
  }
  std::vector<int> every_id;
  for (int id = 0; id < pieces; ++id) {
    FUZZ_CHECK(!model.Piece(id).empty(), "id " + std::to_string(id) + " has no piece");
    model.IsControl(id);
    every_id.push_back(id);
  }
  std::string text;
  const std::string error = model.Decode(every_id, &text);
  FUZZ_CHECK(error.empty(), "decoding every id: " + error);

  for (const char* input : kTexts) {
    const std::vector<int> ids = model.Encode(input);
    for (const int id : ids) {
      FUZZ_CHECK(id >= 0 && id < pieces,
                 std::string(input) + " -> " + Describe(ids) + " of " + std::to_string(pieces));
    }
    std::string decoded;
    const std::string decode_error = model.Decode(ids, &decoded);
    FUZZ_CHECK(decode_error.empty(),
               std::string(input) + " -> " + Describe(ids) + ": " + decode_error);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  {
    std::ofstream out(ModelPath(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    FUZZ_CHECK(out.good(), "cannot write " + ModelPath());
  }
  const std::unique_ptr<SentencePieceModel> model(ProlongNewSentencePieceModel());
  const std::string error = model->Load(ModelPath());
  if (!error.empty()) return 0;
  CheckModel(*model);
  return 0;
}

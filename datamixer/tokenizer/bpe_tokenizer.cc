#include "datamixer/tokenizer/bpe_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/sha256.h"
#include "datamixer/tokenizer/internal/byte_pair.h"
#include "datamixer/tokenizer/utf8.h"

namespace prolong::tokenizer {
namespace {

struct CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
using Code = std::unique_ptr<pcre2_code, CodeDeleter>;

absl::StatusOr<Code> Compile(absl::string_view pattern, absl::string_view what) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  Code code(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr));
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": at offset ", offset, ": ", reinterpret_cast<const char*>(message)));
  }
  // A pattern that sets its own match, depth or heap limit ((*LIMIT_MATCH=1)...) can fail a
  // match halfway through a document, and Encode has no way to say so: refused here.
  for (const uint32_t limit :
       {PCRE2_INFO_MATCHLIMIT, PCRE2_INFO_DEPTHLIMIT, PCRE2_INFO_HEAPLIMIT}) {
    uint32_t value = 0;
    if (pcre2_pattern_info(code.get(), limit, &value) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what,
                       ": sets its own (*LIMIT_...) match limit, which could fail a match "
                       "in the middle of a document; remove it"));
    }
  }
  // Without JIT (unsupported CPU) pcre2_match interprets: slower, same results.
  pcre2_jit_compile(code.get(), PCRE2_JIT_COMPLETE);
  return code;
}

// Per-thread matching state: match data sized for any of our patterns (they have no capture
// groups) and a JIT stack larger than the default 32 KB, which long lookahead-heavy inputs need.
class MatchState {
 public:
  static MatchState& ForThisThread() {
    thread_local MatchState state;
    return state;
  }

  // The extent [start, end) of the first match at or after `offset`, or false if none.
  bool Find(const pcre2_code* code, absl::string_view text, size_t offset, size_t* start,
            size_t* end) {
    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), offset,
                               PCRE2_NO_UTF_CHECK, data_, context_);
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    PROLONG_CHECK(rc >= 0) << "pcre2_match failed with " << rc;
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data_);
    *start = ovector[0];
    *end = ovector[1];
    return true;
  }

 private:
  MatchState()
      : data_(pcre2_match_data_create(4, nullptr)),
        context_(pcre2_match_context_create(nullptr)),
        stack_(pcre2_jit_stack_create(64 << 10, 16 << 20, nullptr)) {
    pcre2_jit_stack_assign(context_, nullptr, stack_);
  }
  ~MatchState() {
    pcre2_jit_stack_free(stack_);
    pcre2_match_context_free(context_);
    pcre2_match_data_free(data_);
  }

  pcre2_match_data* data_;
  pcre2_match_context* context_;
  pcre2_jit_stack* stack_;
};

// Advances past one UTF-8 character (for an empty match, which our patterns cannot produce).
size_t NextCharacter(absl::string_view text, size_t i) {
  ++i;
  while (i < text.size() && (static_cast<uint8_t>(text[i]) & 0xC0) == 0x80) ++i;
  return i;
}

}  // namespace

struct BpeTokenizer::Pattern {
  Code split;
  Code special;  // Alternation of the special tokens; null if there are none.
};

BpeTokenizer::~BpeTokenizer() = default;

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::Create(const BpeSpec& spec) {
  std::unique_ptr<BpeTokenizer> tokenizer(new BpeTokenizer());
  uint32_t max_id = 0;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(spec.ranks, '\n')) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    std::string bytes;
    uint32_t rank = 0;
    if (fields.size() != 2 || !absl::Base64Unescape(fields[0], &bytes) || bytes.empty() ||
        !absl::SimpleAtoi(fields[1], &rank)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rank file line ", line_number, ": want 'base64 rank', got '", line.substr(0, 80), "'"));
    }
    if (rank >= kMaxVocabSize) {
      return absl::InvalidArgumentError(absl::StrCat("rank file line ", line_number, ": rank ",
                                                     rank, " is not below ", kMaxVocabSize));
    }
    if (!tokenizer->ranks_.emplace(std::move(bytes), rank).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("rank file line ", line_number, ": token listed twice"));
    }
    max_id = std::max(max_id, rank);
  }
  if (tokenizer->ranks_.empty()) return absl::InvalidArgumentError("rank file has no tokens");
  for (int byte = 0; byte < 256; ++byte) {
    if (!tokenizer->ranks_.contains(std::string(1, static_cast<char>(byte)))) {
      return absl::InvalidArgumentError(
          absl::StrCat("rank file has no token for the single byte ", byte));
    }
  }
  for (const auto& [token, id] : spec.special_tokens) {
    if (id >= kMaxVocabSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("special token '", token, "': id ", id, " is not below ", kMaxVocabSize));
    }
    max_id = std::max(max_id, id);
  }
  tokenizer->decoder_.resize(size_t{max_id} + 1);
  for (const auto& [bytes, rank] : tokenizer->ranks_) {
    if (!tokenizer->decoder_[rank].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("rank ", rank, " is given to two tokens"));
    }
    tokenizer->decoder_[rank] = bytes;
  }

  tokenizer->pattern_ = std::make_unique<Pattern>();
  auto split = Compile(spec.pattern, "pattern");
  if (!split.ok()) return split.status();
  tokenizer->pattern_->split = *std::move(split);

  std::vector<std::string> specials;
  for (const auto& [token, id] : spec.special_tokens) {
    if (token.empty() || !tokenizer->decoder_[id].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("special token '", token, "': empty, or id ", id, " already used"));
    }
    tokenizer->decoder_[id] = token;
    tokenizer->special_tokens_[token] = id;
    specials.push_back(token);
  }
  if (!specials.empty()) {
    // Longest first, so that a token that is a prefix of another never shadows it.
    std::sort(specials.begin(), specials.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    std::string alternation;
    for (const std::string& token : specials) {
      // Quoted between \Q and \E; an \E inside the token would end the quote early (and let
      // the rest act as pattern syntax), so it is written as \E, an escaped \, E, \Q.
      absl::StrAppend(&alternation, alternation.empty() ? "" : "|", "\\Q",
                      absl::StrReplaceAll(token, {{"\\E", "\\E\\\\E\\Q"}}), "\\E");
    }
    auto special = Compile(alternation, "special tokens");
    if (!special.ok()) return special.status();
    tokenizer->pattern_->special = *std::move(special);
  }

  Sha256 hasher;
  for (const std::string* part : {&spec.ranks, &spec.pattern, &spec.bos_token, &spec.eos_token}) {
    hasher.Update(absl::StrCat(part->size(), ":"));
    hasher.Update(*part);
  }
  for (const auto& [token, id] : spec.special_tokens) {  // A std::map: in a fixed order.
    hasher.Update(absl::StrCat(token.size(), ":", token, "=", id, ";"));
  }
  tokenizer->fingerprint_ = absl::BytesToHexString(hasher.Finish());

  for (auto [name, target] : {std::pair{&spec.bos_token, &tokenizer->bos_id_},
                              std::pair{&spec.eos_token, &tokenizer->eos_id_}}) {
    if (name->empty()) continue;
    *target = tokenizer->SpecialTokenId(*name);
    if (!target->has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bos/eos token '", *name, "' is not a special token"));
    }
  }
  return tokenizer;
}

void BpeTokenizer::EncodeOrdinary(absl::string_view text, std::vector<uint32_t>& out) const {
  MatchState& state = MatchState::ForThisThread();
  size_t offset = 0, start = 0, end = 0;
  while (offset < text.size() && state.Find(pattern_->split.get(), text, offset, &start, &end)) {
    if (end == start) {
      offset = NextCharacter(text, start);
      continue;
    }
    const absl::string_view piece = text.substr(start, end - start);
    if (auto it = ranks_.find(piece); it != ranks_.end()) {
      out.push_back(it->second);
    } else {
      internal::BytePairEncode(ranks_, piece, out);
    }
    offset = end;
  }
}

std::vector<uint32_t> BpeTokenizer::Encode(absl::string_view text) const {
  std::vector<uint32_t> ids;
  ids.reserve(text.size() / 3);
  if (FindInvalidUtf8(text) == text.size()) {
    EncodeOrdinary(text, ids);
  } else {
    EncodeOrdinary(ReplaceInvalidUtf8(text), ids);
  }
  return ids;
}

std::vector<uint32_t> BpeTokenizer::EncodeWithSpecialTokens(absl::string_view input) const {
  if (pattern_->special == nullptr) return Encode(input);
  std::string repaired;
  if (FindInvalidUtf8(input) != input.size()) {
    repaired = ReplaceInvalidUtf8(input);
    input = repaired;
  }
  std::vector<uint32_t> ids;
  MatchState& state = MatchState::ForThisThread();
  size_t offset = 0, start = 0, end = 0;
  while (offset < input.size() &&
         state.Find(pattern_->special.get(), input, offset, &start, &end)) {
    EncodeOrdinary(input.substr(offset, start - offset), ids);
    ids.push_back(special_tokens_.at(input.substr(start, end - start)));
    offset = end;
  }
  EncodeOrdinary(input.substr(offset), ids);
  return ids;
}

absl::StatusOr<std::string> BpeTokenizer::Decode(absl::Span<const uint32_t> ids) const {
  std::string bytes;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] >= decoder_.size() || decoder_[ids[i]].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("ids[", i, "] = ", ids[i], " is not in the vocabulary"));
    }
    bytes += decoder_[ids[i]];
  }
  return bytes;
}

std::optional<uint32_t> BpeTokenizer::SpecialTokenId(absl::string_view token) const {
  auto it = special_tokens_.find(token);
  if (it == special_tokens_.end()) return std::nullopt;
  return it->second;
}

}  // namespace prolong::tokenizer

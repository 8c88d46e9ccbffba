#include "datamixer/tokenizer/test_ranks.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace prolong::tokenizer {

std::string ByteRankFile(const std::vector<std::string>& merges) {
  std::string file;
  int rank = 0;
  for (int b = 0; b < 256; ++b) {
    absl::StrAppend(&file, absl::Base64Escape(std::string(1, static_cast<char>(b))), " ", rank++,
                    "\n");
  }
  for (const std::string& merge : merges) {
    absl::StrAppend(&file, absl::Base64Escape(merge), " ", rank++, "\n");
  }
  return file;
}

}  // namespace prolong::tokenizer

#include "evaluator/metrics/category.h"

namespace prolong::evaluator::metrics {

absl::string_view CategoryName(Category category) {
  switch (category) {
    case Category::kRecall:
      return "recall";
    case Category::kRag:
      return "rag";
    case Category::kRerank:
      return "rerank";
    case Category::kIcl:
      return "icl";
    case Category::kLongQa:
      return "longqa";
    case Category::kSumm:
      return "summ";
    case Category::kRuler:
      return "ruler";
    case Category::kCite:
      return "cite";
  }
  return "unknown";
}

}  // namespace prolong::evaluator::metrics

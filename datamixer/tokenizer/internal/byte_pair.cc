#include "datamixer/tokenizer/internal/byte_pair.h"

#include <limits>
#include <queue>
#include <utility>

namespace prolong::tokenizer::internal {
namespace {

constexpr uint32_t kNoRank = std::numeric_limits<uint32_t>::max();

// Above this many bytes the heap wins; below it the scan's simplicity does.
constexpr size_t kHeapThreshold = 128;

uint32_t RankOf(const RankMap& ranks, absl::string_view bytes) {
  auto it = ranks.find(bytes);
  return it == ranks.end() ? kNoRank : it->second;
}

}  // namespace

void BytePairEncodeByScan(const RankMap& ranks, absl::string_view piece,
                          std::vector<uint32_t>& out) {
  // starts[k] is where part k begins; pair_rank[k] ranks parts k and k+1 merged.
  std::vector<size_t> starts(piece.size() + 1);
  for (size_t k = 0; k <= piece.size(); ++k) starts[k] = k;
  std::vector<uint32_t> pair_rank(piece.size(), kNoRank);
  auto rank_of_pair = [&](size_t k) {
    return k + 2 < starts.size() ? RankOf(ranks, piece.substr(starts[k], starts[k + 2] - starts[k]))
                                 : kNoRank;
  };
  for (size_t k = 0; k + 1 < pair_rank.size(); ++k) pair_rank[k] = rank_of_pair(k);

  while (true) {
    size_t best = 0;
    uint32_t best_rank = kNoRank;
    for (size_t k = 0; k + 1 < starts.size() - 1; ++k) {
      if (pair_rank[k] < best_rank) {  // Strict: the leftmost minimum wins.
        best_rank = pair_rank[k];
        best = k;
      }
    }
    if (best_rank == kNoRank) break;
    starts.erase(starts.begin() + best + 1);
    pair_rank.erase(pair_rank.begin() + best + 1);
    pair_rank[best] = rank_of_pair(best);
    if (best > 0) pair_rank[best - 1] = rank_of_pair(best - 1);
  }
  for (size_t k = 0; k + 1 < starts.size(); ++k) {
    out.push_back(RankOf(ranks, piece.substr(starts[k], starts[k + 1] - starts[k])));
  }
}

void BytePairEncodeByHeap(const RankMap& ranks, absl::string_view piece,
                          std::vector<uint32_t>& out) {
  // Parts form a doubly linked list over byte offsets; part k spans [k, next[k]). A removed
  // part has next[k] == 0. Heap entries are (rank, start of the left part, end of the pair):
  // ordering by (rank, start) picks the same pair as the leftmost-minimum scan, and an entry
  // whose pair no longer exists with that extent is stale and skipped.
  const size_t n = piece.size();
  std::vector<size_t> next(n), prev(n);
  for (size_t k = 0; k < n; ++k) {
    next[k] = k + 1;
    prev[k] = k == 0 ? n : k - 1;  // n: no previous part.
  }
  using Entry = std::pair<uint64_t, size_t>;  // ((rank << 32) | start, pair end)
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  auto push_pair = [&](size_t start) {
    if (start >= n || next[start] >= n) return;
    const size_t end = next[next[start]];
    const uint32_t rank = RankOf(ranks, piece.substr(start, end - start));
    if (rank != kNoRank) heap.push({(uint64_t{rank} << 32) | start, end});
  };
  for (size_t k = 0; k + 1 < n; ++k) push_pair(k);

  while (!heap.empty()) {
    const auto [key, end] = heap.top();
    heap.pop();
    const size_t start = key & 0xFFFFFFFFu;
    if (next[start] == 0 || next[start] >= n || next[next[start]] != end) continue;  // Stale.
    const size_t removed = next[start];
    next[start] = end;
    if (end < n) prev[end] = start;
    next[removed] = 0;
    push_pair(start);
    if (prev[start] != n) push_pair(prev[start]);
  }
  for (size_t k = 0; k < n; k = next[k]) {
    out.push_back(RankOf(ranks, piece.substr(k, next[k] - k)));
  }
}

void BytePairEncode(const RankMap& ranks, absl::string_view piece, std::vector<uint32_t>& out) {
  if (piece.size() < kHeapThreshold) {
    BytePairEncodeByScan(ranks, piece, out);
  } else {
    BytePairEncodeByHeap(ranks, piece, out);
  }
}

}  // namespace prolong::tokenizer::internal

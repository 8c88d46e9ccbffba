// Which sequences of a global batch each data-parallel rank trains, so that every micro-step's
// attention work (the sum of squared document lengths, ProLong's measure) is balanced across
// ranks while the global batch stays the same set of sequences.
//
// The rule, for a batch of B sequences over D ranks:
//   1. Order the sequences by cost, largest first (ties: batch order, so a plan's batch, already
//      in that order, keeps it), and cut the order into B/D rounds of D consecutive sequences.
//   2. Every rank trains one sequence of each round, rounds in order.
//   3. Within a round the heaviest sequence goes to the rank with the least load so far in the
//      current micro-step, the next heaviest to the next least loaded, and so on (equal loads:
//      the lower rank first). Loads restart at each micro-step, every micro_batch_sequences
//      rounds; with micro_batch_sequences 0 they run over the whole step.
//
// Why rounds rather than a free greedy: with one sequence per round, micro-step i of every rank
// covers rounds [i*m, (i+1)*m) whatever the trainer's micro-batch size m, so a layout computed
// without knowing m (the datamixer's API does not carry it yet) stays balanced for every m:
//   - every micro-step is never slower than under contiguous slices: a rank's load in it is at
//     most the sum of its rounds' heaviest sequences, while contiguous rank 0 takes the B/D
//     heaviest of the batch;
//   - with m = 1 each micro-step is one round of D consecutive costs, the grouping that
//     minimizes the sum over micro-steps of the slowest rank;
//   - within a micro-step whose loads restart with it, the ranks' loads differ by at most the
//     widest cost gap within one of its rounds (pairing the ascending loads with descending
//     costs never widens the spread beyond the larger of the two); with loads running over the
//     whole step, by at most twice that.
// Every rank gets B/D sequences, so all do the same number of micro-steps, and costs are sums
// of squared integers below 2^53, exact in a double: the layout is bit-identical everywhere.
#ifndef PROLONG_DATAMIXER_PLAN_RANK_BALANCE_H_
#define PROLONG_DATAMIXER_PLAN_RANK_BALANCE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "datamixer/plan/rank_layout.h"

namespace prolong::plan {

// For each data-parallel rank, the positions in the batch (indexes into costs) of the sequences
// it trains, in the order it trains them. INVALID_ARGUMENT naming the field for a dp_size below
// 1 or not dividing costs.size() (rank.dp_size), a negative micro_batch_sequences
// (rank.micro_batch_sequences), or a negative or non-finite cost (costs[j]).
absl::StatusOr<std::vector<std::vector<int64_t>>> BalanceDataParallel(
    absl::Span<const double> costs, int dp_size, int64_t micro_batch_sequences);

// The positions rank.dp_rank trains: BalanceDataParallel(costs, rank.dp_size,
// rank.micro_batch_sequences)[rank.dp_rank], after ValidateRank. Context-parallel ranks of one
// replica get the same positions.
absl::StatusOr<std::vector<int64_t>> DataParallelSequences(absl::Span<const double> costs,
                                                           const Rank& rank);

// The contiguous slices (DataParallelSlice) as positions: the layout to compare against.
std::vector<std::vector<int64_t>> ContiguousDataParallel(int64_t batch_sequences, int dp_size);

// How unevenly a layout spreads one step's attention work over the ranks: micro-step i of a
// rank is its positions [i*m, (i+1)*m) (all of them when m is 0) and waits for the most loaded
// rank, so the step takes the sum over micro-steps of the slowest rank's cost. The imbalance is
// that sum over the sum of the mean rank's cost (the step with the work spread evenly): 1 is
// even, 1.5 is half as long again. `layout` as BalanceDataParallel returns it: every rank the
// same number of positions.
double StepImbalance(absl::Span<const double> costs,
                     const std::vector<std::vector<int64_t>>& layout,
                     int64_t micro_batch_sequences);

}  // namespace prolong::plan

#endif  // PROLONG_DATAMIXER_PLAN_RANK_BALANCE_H_

// What every rank of a context-parallel group holds of a packed sequence: each rank's token
// layout (document ids and positions), gathered once per micro-batch rather than by every layer,
// since all layers attend with the same layout. Both schemes attend to keys laid out so.
//
// Thread-safety: GatherLayouts is a collective (every rank calls it at the same point); the
// result is immutable.
#ifndef PROLONG_TRAINER_PARALLEL_GATHERED_LAYOUTS_H_
#define PROLONG_TRAINER_PARALLEL_GATHERED_LAYOUTS_H_

#include <cstdint>
#include <vector>

#include "torch/types.h"
#include "trainer/attention/blockwise_attention.h"
#include "trainer/comm/communicator.h"

namespace prolong::parallel {

struct GatheredLayouts {
  // The most tokens any rank holds: every rank's rows are padded to it so that shapes agree.
  int64_t rows = 0;
  // Every rank's layout padded to `rows`, in rank order. Padding carries document -1, which no
  // query has: padding keys are never attended.
  attention::TokenLayout keys;
  // Rank r's part of `keys`; the same tensors for every layer, so that what is derived from
  // them (a varlen plan) is too.
  std::vector<attention::TokenLayout> blocks;
  // With `visibility`: whether this rank's queries see any of rank r's keys (the ring skips the
  // blocks they do not); empty otherwise.
  std::vector<bool> visible;
  // The rows of `keys` that hold tokens, in order, and their layout: the whole sequence, as
  // Ulysses attends to it (padding left out).
  torch::Tensor token_rows;
  attention::TokenLayout tokens;
};

// Collective over `cp`: gathers the ranks' layouts; `local` is this rank's.
GatheredLayouts GatherLayouts(comm::Communicator& cp, const attention::TokenLayout& local,
                              bool visibility);

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_GATHERED_LAYOUTS_H_
